/**
 * FedAvgM (Hsu et al. 2019): server momentum on the pseudo-gradient g = w − FedAvg(w_k),
 *   v ← β v + g (v = g in the first round),  w' = w − η v.
 * Flower's equations and defaults (server learning rate η = 1, momentum β = 0, which makes it
 * FedAvg until a momentum is set).
 */
import { AggregationError, MeanBasedRule, type RuleState } from './aggregationRule.js';

export interface FedAvgMOptions {
  serverLearningRate?: number;
  serverMomentum?: number;
}

export class FedAvgM extends MeanBasedRule {
  readonly name = 'fedavgm';
  readonly serverLearningRate: number;
  readonly serverMomentum: number;
  private momentum: Float32Array | null = null;

  constructor(o: FedAvgMOptions = {}) {
    super();
    this.serverLearningRate = o.serverLearningRate ?? 1;
    this.serverMomentum = o.serverMomentum ?? 0;
    if (!(this.serverLearningRate > 0)) throw new AggregationError(`fedavgm: serverLearningRate must be > 0 (got ${this.serverLearningRate})`);
    if (!(this.serverMomentum >= 0 && this.serverMomentum < 1)) throw new AggregationError(`fedavgm: serverMomentum must be in [0, 1) (got ${this.serverMomentum})`);
  }

  applyMeanDelta(current: Float32Array, meanDelta: Float64Array | Float32Array): Float32Array {
    const next = new Float32Array(current.length);
    const beta = this.serverMomentum;
    const eta = this.serverLearningRate;
    if (beta > 0) {
      const first = this.momentum === null || this.momentum.length !== current.length;
      if (first) this.momentum = new Float32Array(current.length);
      const v = this.momentum!;
      for (let i = 0; i < current.length; i++) {
        const g = -meanDelta[i]; // pseudo-gradient: current − FedAvg result
        v[i] = first ? g : beta * v[i] + g;
        next[i] = current[i] - eta * v[i];
      }
    } else {
      for (let i = 0; i < current.length; i++) next[i] = current[i] + eta * meanDelta[i];
    }
    return next;
  }

  override exportState(): RuleState {
    return this.momentum ? { momentum: this.momentum } : {};
  }

  override importState(state: RuleState): void {
    this.momentum = state.momentum ?? null;
  }
}
