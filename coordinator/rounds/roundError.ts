/** Why a round cannot start or run (409: conflict with the federation's state; 404: no such experiment). */
import { FedmedError } from '../../shared/errors.js';

export class RoundError extends FedmedError {
  constructor(
    message: string,
    readonly status: 404 | 409 = 409,
  ) {
    super('ROUND', message);
  }
}
