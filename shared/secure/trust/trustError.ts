/**
 * A certificate, revocation list or signed key set that the holder of the pinned federation
 * admin key would not have signed, or that is no longer valid. `reason` is stable for tests and
 * for the refusal reported to the coordinator; the message names what is wrong.
 */
import { FedmedError } from '../../errors.js';

export type TrustFailure =
  /** Not valid JSON of the expected shape. */
  | 'malformed'
  /** The signature does not verify with the pinned admin key (forged, altered, another federation). */
  | 'forged'
  /** Outside its validity period. */
  | 'expired'
  | 'not_yet_valid'
  /** Its serial is on the admin's revocation list. */
  | 'revoked'
  /** Valid, but for another subject (another site, URL or key). */
  | 'wrong_subject'
  /** A revocation list older than the one already held. */
  | 'stale'
  /** Something required (a certificate, a signed key set) is missing. */
  | 'missing';

export class TrustError extends FedmedError {
  constructor(
    readonly reason: TrustFailure,
    message: string,
  ) {
    super('TRUST', message);
  }
}
