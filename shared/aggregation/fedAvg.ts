/**
 * FedAvg (McMahan et al. 2017): the next global model is the example-weighted mean of the
 * sites' models, w' = w + Σ n_k Δ_k / Σ n_k — Flower's `aggregate()` (summed in float64 here).
 *
 * FedProx (Li et al. 2020) aggregates the same way; what differs is local training: each site
 * minimises its loss plus (μ/2)‖w − w_global‖², so the rule sends μ in every fit config.
 */
import type { FitConfig } from '../protocol/messages.js';
import { AggregationError, MeanBasedRule } from './aggregationRule.js';

export class FedAvg extends MeanBasedRule {
  readonly name: string = 'fedavg';

  applyMeanDelta(current: Float32Array, meanDelta: Float64Array | Float32Array): Float32Array {
    const next = new Float32Array(current.length);
    for (let i = 0; i < current.length; i++) next[i] = current[i] + meanDelta[i];
    return next;
  }
}

export interface FedProxOptions {
  /** μ of the proximal term (Flower's `proximal_mu`; required there too). */
  proximalMu: number;
}

export class FedProx extends FedAvg {
  override readonly name = 'fedprox';

  constructor(private readonly o: FedProxOptions) {
    super();
    if (!(Number.isFinite(o.proximalMu) && o.proximalMu >= 0)) throw new AggregationError(`fedprox: proximalMu must be a number >= 0 (got ${o.proximalMu})`);
  }

  fitConfig(): Partial<FitConfig> {
    return { proxMu: this.o.proximalMu };
  }
}
