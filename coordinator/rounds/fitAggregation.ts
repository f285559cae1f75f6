/**
 * The coordinator half of a `SecureAggregator`, per round: the round engine sends `fit_ins`
 * (plus `fitInsFields()`), hands every fit-phase message and dropout to it, and after the fit
 * phase asks it for the aggregate — without knowing whether updates arrived in the clear
 * (plain) or masked (SecAgg+). Either way the result is the same `AggregatedFit`; under CKKS it
 * is an encrypted aggregate, which the round engine publishes as an encrypted version.
 */
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import type { SecAggRoundParams } from '../../shared/secure/secagg/secaggParams.js';
import type { CkksRoundParams } from '../../shared/secure/ckks/ckksParams.js';
import { releaseBuffer } from '../../shared/protocol/releasableBuffers.js';
import { PlainAggregator } from './plainAggregator.js';

export interface FitAggregationHooks {
  send(site: string, message: Message): Promise<void>;
  /** Drops a site from the round with a reason (it missed a protocol phase). */
  drop(site: string, reason: string): void;
  /** Ends the fit phase early (the round cannot complete; finish() will say why). */
  endPhase(): void;
}

export interface FitAggregation<Result = AggregatedFit> {
  readonly security: 'plain' | 'secagg' | 'ckks';
  /** Fields added to `fit_ins`. */
  fitInsFields(): { security?: SecAggRoundParams; ckks?: CkksRoundParams };
  /** A site's `fit_res` and its payload. Throws (naming the problem) for a result to refuse. */
  addResult(site: string, m: MessageOf<'fit_res'>, payload: Uint8Array, weight: number): void;
  /** A protocol message of the aggregation itself (SecAgg+ key, share and unmask messages). */
  onProtocolMessage(site: string, m: Message): void;
  /** The site is gone for the rest of the round (disconnect, failure, deadline). */
  siteGone(site: string): void;
  /**
   * After the fit phase: the aggregate of the accepted updates (plain and SecAgg+: their sum in
   * the clear; CKKS: their encrypted sum); throws when the round must fail.
   */
  finish(): Promise<Result>;
  /** Why the round can no longer complete (known before finish()), or null. */
  failure(): string | null;
  /** Frees what the aggregation holds outside the JS heap (CKKS ciphertexts), however the round ended. */
  dispose?(): void;
  /** Summary for the round record. */
  describe(): Record<string, unknown> | undefined;
}

/** Updates arrive in the clear and are summed as they come (see PlainAggregator). */
export class PlainAggregation implements FitAggregation {
  readonly security = 'plain' as const;

  constructor(private readonly aggregator: PlainAggregator) {}

  fitInsFields() {
    return {};
  }

  addResult(site: string, _m: MessageOf<'fit_res'>, payload: Uint8Array, weight: number): void {
    try {
      this.aggregator.add(payload, weight, site);
    } finally {
      releaseBuffer(payload); // added (or refused): its 4 bytes per parameter are freed now, not at the next GC
    }
  }

  onProtocolMessage(_site: string, m: Message): void {
    throw new Error(`${m.type} in a round without secure aggregation`);
  }

  siteGone(): void {}

  finish(): Promise<AggregatedFit> {
    return Promise.resolve(this.aggregator.result());
  }

  failure() {
    return null;
  }

  describe() {
    return this.aggregator.bounded > 0 ? { normBounded: this.aggregator.bounded } : undefined;
  }
}
