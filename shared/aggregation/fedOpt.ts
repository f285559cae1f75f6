/**
 * Adaptive server optimisers (Reddi et al. 2021, "Adaptive Federated Optimization"): the
 * FedAvg update Δ = Σ n_k Δ_k / Σ n_k is treated as a pseudo-gradient and fed to Adam, Yogi or
 * Adagrad on the server:
 *   m ← β1 m + (1 − β1) Δ
 *   Adam:    v ← β2 v + (1 − β2) Δ²
 *   Yogi:    v ← v − (1 − β2) Δ² sign(v − Δ²)
 *   Adagrad: v ← v + Δ²            (β1 = 0: m = Δ)
 *   w' = w + η m / (√v + τ)
 * m and v start at 0 (Flower; the paper allows v₀ ≥ τ²). Defaults are Flower's: FedAdam η 0.1,
 * β1 0.9, β2 0.99, τ 1e-9; FedYogi η 0.01, β1 0.9, β2 0.99, τ 1e-3; FedAdagrad η 0.1, τ 1e-9.
 *
 * Bias correction (FedAdam only, on by default): η_t = η √(1 − β2^t) / (1 − β1^t) with t the
 * number of server steps taken, as in Kingma & Ba. The paper's FedAdam has none; Flower applies
 * it with t = round + 1, one step ahead of Kingma & Ba, which under-corrects the first rounds
 * (η_1 = 0.1·√0.0199/0.19 ≈ 0.074 instead of 0.1·√0.01/0.1 = 0.1). We use t = steps taken;
 * `biasCorrection: false` gives the paper's rule.
 */
import { AggregationError, MeanBasedRule, type RuleState } from './aggregationRule.js';

export type FedOptVariant = 'fedadam' | 'fedyogi' | 'fedadagrad';

export interface FedOptOptions {
  /** Server learning rate η. */
  eta?: number;
  beta1?: number;
  beta2?: number;
  /** Adaptivity τ. */
  tau?: number;
  /** FedAdam only: Kingma & Ba's bias correction of the step size (default true). */
  biasCorrection?: boolean;
}

const DEFAULTS: Record<FedOptVariant, Required<FedOptOptions>> = {
  fedadam: { eta: 0.1, beta1: 0.9, beta2: 0.99, tau: 1e-9, biasCorrection: true },
  fedyogi: { eta: 0.01, beta1: 0.9, beta2: 0.99, tau: 1e-3, biasCorrection: false },
  fedadagrad: { eta: 0.1, beta1: 0, beta2: 0, tau: 1e-9, biasCorrection: false },
};

export class FedOpt extends MeanBasedRule {
  readonly options: Required<FedOptOptions>;
  private m: Float32Array | null = null;
  private v: Float32Array | null = null;
  private steps = 0;

  constructor(
    readonly name: FedOptVariant,
    o: FedOptOptions = {},
  ) {
    super();
    this.options = { ...DEFAULTS[name], ...o };
    const { eta, beta1, beta2, tau, biasCorrection } = this.options;
    if (!(eta > 0)) throw new AggregationError(`${name}: eta must be > 0 (got ${eta})`);
    if (!(beta1 >= 0 && beta1 < 1)) throw new AggregationError(`${name}: beta1 must be in [0, 1) (got ${beta1})`);
    if (name !== 'fedadagrad' && !(beta2 >= 0 && beta2 < 1)) throw new AggregationError(`${name}: beta2 must be in [0, 1) (got ${beta2})`);
    if (!(tau > 0)) throw new AggregationError(`${name}: tau must be > 0 (got ${tau})`);
    if (biasCorrection && name !== 'fedadam') throw new AggregationError(`${name}: biasCorrection applies to fedadam only`);
  }

  applyMeanDelta(current: Float32Array, delta: Float64Array | Float32Array): Float32Array {
    const n = current.length;
    if (!this.m || this.m.length !== n) {
      this.m = new Float32Array(n);
      this.v = new Float32Array(n);
      this.steps = 0;
    }
    const m = this.m;
    const v = this.v!;
    const { beta1, beta2, tau, biasCorrection } = this.options;
    this.steps++;
    const eta = biasCorrection ? (this.options.eta * Math.sqrt(1 - beta2 ** this.steps)) / (1 - beta1 ** this.steps) : this.options.eta;
    const next = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const d = delta[i];
      const d2 = d * d;
      m[i] = beta1 * m[i] + (1 - beta1) * d;
      if (this.name === 'fedadam') v[i] = beta2 * v[i] + (1 - beta2) * d2;
      else if (this.name === 'fedyogi') v[i] = v[i] - (1 - beta2) * d2 * Math.sign(v[i] - d2);
      else v[i] = v[i] + d2;
      next[i] = current[i] + (eta * m[i]) / (Math.sqrt(v[i]) + tau);
    }
    return next;
  }

  override exportState(): RuleState {
    return this.m ? { m: this.m, v: this.v!, steps: Float32Array.of(this.steps) } : {};
  }

  override importState(state: RuleState): void {
    this.m = state.m ?? null;
    this.v = state.v ?? null;
    this.steps = state.steps?.[0] ?? 0;
  }
}
