/**
 * `security: "plain"`: updates arrive in the clear and are checked and summed as they come
 * (PlainAggregator, one buffer reused across rounds). Every certified site can take part. Each
 * update's L2 norm is bounded by the experiment's normBound (default: 3 × the round's median
 * update norm, see experimentConfig.ts), so one site cannot replace the model by sending a huge
 * update; the round records the bound applied and how many updates it scaled down.
 */
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { releaseBuffer } from '../../shared/protocol/releasableBuffers.js';
import { normBoundOf } from '../experimentConfig.js';
import type { ExperimentRecord } from '../store/storeSchema.js';
import type { FitAggregation } from './fitAggregation.js';
import { PlainAggregator } from './plainAggregator.js';
import type { AggregationRound, SecureAggregator } from './secureAggregator.js';

export class PlainProtection implements SecureAggregator {
  readonly mode = 'plain' as const;
  readonly clearModel = true;
  private readonly aggregator = new PlainAggregator();

  /** How plain rounds add updates: 'wasm-simd', or 'js' where WebAssembly SIMD is unavailable. */
  get summation(): 'wasm-simd' | 'js' {
    return this.aggregator.summation;
  }

  eligible(_exp: ExperimentRecord, sites: string[]): string[] {
    return sites;
  }

  evalInsFields() {
    return {};
  }

  open(r: AggregationRound): Promise<PlainAggregation> {
    this.aggregator.reset(r.size, { keepUpdates: r.keepUpdates, normBound: normBoundOf(r.exp.config) });
    return Promise.resolve(new PlainAggregation(this.aggregator));
  }
}

/** One plain round: each update is added (or refused) as it arrives. */
export class PlainAggregation implements FitAggregation {
  readonly security = 'plain' as const;
  readonly revealsUpdates = true;

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
    const bound = this.aggregator.appliedBound;
    return bound !== undefined ? { normBound: bound, normBounded: this.aggregator.bounded } : undefined;
  }
}
