/** Why a model version was refused by the edge's checks before it serves. */
import { FedmedError } from '../../shared/errors.js';

export class ModelCheckError extends FedmedError {
  constructor(message: string) {
    super('MODEL_CHECK_FAILED', message);
  }
}

/**
 * A version below the site's accuracy rules on its local test split. The figures describe the
 * site's data: they stay in its log, and the coordinator is told only that the checks failed
 * (`publicReason`) — otherwise offering crafted models would read the test set out, one figure
 * per offer.
 */
export class LocalAccuracyError extends ModelCheckError {
  readonly publicReason: string;

  /** `publicReason`: what the coordinator may be told (never a figure computed on the local data). */
  constructor(message: string, publicReason = "below this site's accuracy rules on its local test data (the figures stay at the site)") {
    super(message);
    this.publicReason = publicReason;
  }
}
