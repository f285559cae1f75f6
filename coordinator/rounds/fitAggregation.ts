/**
 * The coordinator half of a `SecureAggregator`, per round: the round engine sends `fit_ins`
 * (plus `fitInsFields()`), hands every fit-phase message and dropout to it, and after the fit
 * phase asks it for the aggregate — without knowing whether updates arrived in the clear
 * (plain) or masked (SecAgg+). Either way the result is the same `AggregatedFit`; under CKKS it
 * is an encrypted aggregate, which becomes an encrypted version (modelUpdate.ts). Each
 * implementation reports misbehaviour as a ProtocolError and a failed protocol as an
 * AggregationAbort, so the engine needs no protocol's own error types.
 */
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import { FedmedError } from '../../shared/errors.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import type { SecAggRoundParams } from '../../shared/secure/secagg/secaggParams.js';
import type { CkksRoundParams } from '../../shared/secure/ckks/ckksParams.js';
import type { PhaseStatus } from '../events/federationEvents.js';
import type { SecAggStage, StageDetail } from '../events/roundEvents.js';

export interface FitAggregationHooks {
  send(site: string, message: Message): Promise<void>;
  /** Drops a site from the round with a reason (it missed a protocol phase). */
  drop(site: string, reason: string): void;
  /** Ends the fit phase early (the round cannot complete; finish() will say why). */
  endPhase(): void;
  /** A site's SecAgg+ stage started or ended (the event feed; events/roundEvents.ts). */
  stage?(site: string, stage: SecAggStage, status: PhaseStatus, detail?: StageDetail): void;
}

/** The secure protocol failed as a whole (too few sites left, tampered shares): the round fails. */
export class AggregationAbort extends FedmedError {
  constructor(message: string) {
    super('AGGREGATION_ABORT', message);
  }
}

export interface FitAggregation<Result = AggregatedFit> {
  readonly security: 'plain' | 'secagg' | 'ckks';
  /**
   * Whether the coordinator sees each update as it arrives (plain): a round that received any
   * has released them, even if it then fails. Otherwise only finish() releases anything (a sum).
   */
  readonly revealsUpdates: boolean;
  /** Fields added to `fit_ins`. */
  fitInsFields(): { security?: SecAggRoundParams; ckks?: CkksRoundParams };
  /** A site's `fit_res` and its payload. Throws (a ProtocolError for a site's misbehaviour) for a result to refuse. */
  addResult(site: string, m: MessageOf<'fit_res'>, payload: Uint8Array, weight: number): void;
  /** A protocol message of the aggregation itself (SecAgg+ key, share and unmask messages). */
  onProtocolMessage(site: string, m: Message): void;
  /** The site is gone for the rest of the round (disconnect, failure, deadline). */
  siteGone(site: string): void;
  /**
   * After the fit phase: the aggregate of the accepted updates (plain and SecAgg+: their sum in
   * the clear; CKKS: their encrypted sum); throws AggregationAbort when the round must fail.
   */
  finish(): Promise<Result>;
  /** Why the round can no longer complete (known before finish()), or null. */
  failure(): string | null;
  /** Frees what the aggregation holds outside the JS heap (CKKS ciphertexts), however the round ended. */
  dispose?(): void;
  /** Summary for the round record. */
  describe(): Record<string, unknown> | undefined;
}
