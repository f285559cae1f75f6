/** Errors of the CKKS secure aggregation: a refused ciphertext, key or model chain. */
import { FedmedError } from '../../errors.js';

export class CkksError extends FedmedError {
  constructor(
    message: string,
    /** The site whose message was refused, if one is to blame. */
    readonly site?: string,
  ) {
    super('CKKS', message);
  }
}
