/** Errors of the SecAgg+ protocol: a bad parameter set, or a message that breaks the protocol. */
import { FedmedError } from '../../errors.js';

/** Parameters that cannot work (e.g. the sum could wrap, threshold too low). */
export class SecAggConfigError extends FedmedError {
  constructor(message: string) {
    super('SECAGG_CONFIG', message);
  }
}

/**
 * A protocol message that must be refused: wrong phase, round or session, a replay, a bad
 * signature, a share that fails authentication, a vector of the wrong length. `site` names the
 * site whose message it was (the one to drop); the round itself goes on when it can.
 */
export class SecAggProtocolError extends FedmedError {
  constructor(
    message: string,
    readonly site?: string,
  ) {
    super('SECAGG_PROTOCOL', message);
  }
}

/** The round cannot complete securely (too few survivors, a reconstruction that fails its check). */
export class SecAggAbort extends FedmedError {
  constructor(message: string) {
    super('SECAGG_ABORT', message);
  }
}
