/**
 * Rényi-DP accountant for the Poisson-subsampled Gaussian mechanism, following Mironov, Talwar
 * and Zhang (2019), "Rényi Differential Privacy of the Sampled Gaussian Mechanism": exact
 * at integer orders (binomial expansion) and at fractional orders (their two-series formula with
 * erfc), RDP composed additively over rounds (which may differ in q and z), and converted to
 * (ε, δ) with the tight conversion of Canonne, Kamath and Steinke (2020) as Google's
 * dp_accounting does (the classic conversion ε = RDP − log δ / (α − 1) is available too).
 */
import { logAdd, logErfc, logSub } from './specialFunctions.js';
import { PrivacyParameterError, requireDelta, requirePositive, requireSamplingRate, requireSteps } from './privacyErrors.js';

/** 1.1..10.9 by 0.1, 11..63, 128, 256, 512, 1024. */
export const DEFAULT_ORDERS: readonly number[] = [
  ...Array.from({ length: 99 }, (_, i) => Math.round((1.1 + i * 0.1) * 10) / 10),
  ...Array.from({ length: 53 }, (_, i) => 11 + i),
  128,
  256,
  512,
  1024,
];

function logBinomialInt(n: number, k: number): number {
  return lgammaInt(n + 1) - lgammaInt(k + 1) - lgammaInt(n - k + 1);
}

const lgammaCache: number[] = [0, 0];
/** log(Γ(n)) = log((n-1)!) for integer n >= 1, cached. */
function lgammaInt(n: number): number {
  for (let i = lgammaCache.length; i <= n; i++) lgammaCache[i] = lgammaCache[i - 1] + Math.log(i - 1);
  return lgammaCache[n];
}

/** log A_α for integer α (binomial expansion). */
function logAInt(q: number, sigma: number, alpha: number): number {
  let logA = -Infinity;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  for (let i = 0; i <= alpha; i++) {
    const s = logBinomialInt(alpha, i) + i * lq + (alpha - i) * l1q + (i * i - i) / (2 * sigma * sigma);
    logA = logAdd(logA, s);
  }
  return logA;
}

/** log A_α for fractional α (Mironov et al. 2019, Section 3.3). */
function logAFrac(q: number, sigma: number, alpha: number): number {
  let logA0 = -Infinity;
  let logA1 = -Infinity;
  const z0 = sigma * sigma * Math.log(1 / q - 1) + 0.5;
  const lq = Math.log(q);
  const l1q = Math.log1p(-q);
  let logCoef = 0; // log |binom(α, i)|
  let coefSign = 1;
  for (let i = 0; ; i++) {
    if (i > 0) {
      const factor = (alpha - (i - 1)) / i;
      if (factor < 0) coefSign = -coefSign;
      logCoef += Math.log(Math.abs(factor));
    }
    const j = alpha - i;
    const logT0 = logCoef + i * lq + j * l1q;
    const logT1 = logCoef + j * lq + i * l1q;
    const logE0 = Math.log(0.5) + logErfc((i - z0) / (Math.SQRT2 * sigma));
    const logE1 = Math.log(0.5) + logErfc((z0 - j) / (Math.SQRT2 * sigma));
    const logS0 = logT0 + (i * i - i) / (2 * sigma * sigma) + logE0;
    const logS1 = logT1 + (j * j - j) / (2 * sigma * sigma) + logE1;
    if (coefSign > 0) {
      logA0 = logAdd(logA0, logS0);
      logA1 = logAdd(logA1, logS1);
    } else {
      logA0 = logSub(logA0, logS0);
      logA1 = logSub(logA1, logS1);
    }
    if (Math.max(logS0, logS1) < -30 || i > 10000) break;
  }
  return logAdd(logA0, logA1);
}

/** RDP of one step of the subsampled Gaussian mechanism (sampling rate q, noise multiplier z) at each order. */
export function rdpSubsampledGaussian(q: number, z: number, orders: readonly number[] = DEFAULT_ORDERS): Float64Array {
  requireSamplingRate(q);
  requirePositive('noise multiplier z', z);
  return Float64Array.from(orders, (alpha) => {
    if (!(alpha > 1)) throw new PrivacyParameterError(`RDP orders must be > 1, got ${alpha}`);
    if (q === 1) return alpha / (2 * z * z);
    const logA = Number.isInteger(alpha) ? logAInt(q, z, alpha) : logAFrac(q, z, alpha);
    return logA / (alpha - 1);
  });
}

export interface EpsilonResult {
  epsilon: number;
  /** The RDP order that gave the smallest ε. */
  order: number;
}

/** (ε, δ) from composed RDP: the tight conversion (default) or the classic one. */
export function epsilonFromRdp(rdp: ArrayLike<number>, orders: readonly number[], delta: number, conversion: 'tight' | 'classic' = 'tight'): EpsilonResult {
  requireDelta(delta);
  let best = Infinity;
  let bestOrder = orders[0];
  for (let k = 0; k < orders.length; k++) {
    const a = orders[k];
    const r = rdp[k];
    if (r < 0 || Number.isNaN(r)) throw new PrivacyParameterError(`RDP value at order ${a} is invalid (${r})`);
    let eps: number;
    if (conversion === 'classic') eps = r - Math.log(delta) / (a - 1);
    else if (delta * delta + Math.expm1(-r) >= 0) eps = 0; // δ ≥ sqrt(1 - exp(-KL)): ε = 0 suffices
    else if (a > 1.01) eps = r + Math.log1p(-1 / a) - Math.log(delta * a) / (a - 1);
    else eps = Infinity;
    if (eps < best) {
      best = eps;
      bestOrder = a;
    }
  }
  return { epsilon: Math.max(0, best), order: bestOrder };
}

/**
 * Accumulates the privacy cost of a sequence of rounds (each: sampling rate, noise multiplier,
 * number of steps) and reports (ε, δ).
 */
/**
 * Per-step RDP vectors at the default orders, memoised: ledgers are rebuilt from their rounds on
 * every status request and every site refusal check, and rounds repeat the same (q, z).
 */
const memo = new Map<string, Float64Array>();
function perStepRdp(q: number, z: number, orders: readonly number[]): Float64Array {
  if (orders !== DEFAULT_ORDERS) return rdpSubsampledGaussian(q, z, orders);
  const key = `${q}|${z}`;
  let v = memo.get(key);
  if (!v) {
    v = rdpSubsampledGaussian(q, z, orders);
    if (memo.size >= 4096) memo.clear(); // bounded: parameters rarely vary this much
    memo.set(key, v);
  }
  return v;
}

export class RdpAccountant {
  /** Steps taken per distinct (q, z); RDP is linear in steps, so it is summed only when asked. */
  private readonly events = new Map<string, { q: number; z: number; steps: number; perStep: Float64Array }>();
  private last: { q: number; z: number; entry: { steps: number } } | null = null;

  /** RDP composed with composeRdp, kept apart from the (q, z) events. */
  private readonly custom: Float64Array;

  constructor(readonly orders: readonly number[] = DEFAULT_ORDERS) {
    this.custom = new Float64Array(orders.length);
  }

  compose(q: number, z: number, steps = 1): this {
    requireSteps(steps);
    if (this.last && this.last.q === q && this.last.z === z) {
      this.last.entry.steps += steps; // the common case: the same round parameters again
      return this;
    }
    const key = `${q}|${z}`;
    let entry = this.events.get(key);
    if (!entry) {
      entry = { q, z, steps: 0, perStep: perStepRdp(q, z, this.orders) };
      this.events.set(key, entry);
    }
    entry.steps += steps;
    this.last = { q, z, entry };
    return this;
  }

  /**
   * Composes a mechanism given by its own RDP curve at this accountant's orders (e.g. the
   * distributed discrete Gaussian, see privacyMechanism.ts), `steps` times.
   */
  composeRdp(perStep: ArrayLike<number>, steps = 1): this {
    requireSteps(steps);
    if (perStep.length !== this.orders.length) throw new PrivacyParameterError(`RDP curve has ${perStep.length} values for ${this.orders.length} orders`);
    for (let k = 0; k < perStep.length; k++) {
      const r = perStep[k];
      if (!(r >= 0)) throw new PrivacyParameterError(`RDP value at order ${this.orders[k]} is invalid (${r})`);
      this.custom[k] += steps * r;
    }
    return this;
  }

  /** Composed RDP at each order. */
  get rdp(): Float64Array {
    const total = Float64Array.from(this.custom);
    for (const e of this.events.values()) for (let k = 0; k < total.length; k++) total[k] += e.steps * e.perStep[k];
    return total;
  }

  epsilon(delta: number, conversion: 'tight' | 'classic' = 'tight'): EpsilonResult {
    return epsilonFromRdp(this.rdp, this.orders, delta, conversion);
  }
}

export interface DpSgdParams {
  noiseMultiplier: number;
  samplingRate: number;
  steps: number;
  delta: number;
}

export function computeEpsilon(p: DpSgdParams, conversion: 'tight' | 'classic' = 'tight'): EpsilonResult {
  return new RdpAccountant().compose(p.samplingRate, p.noiseMultiplier, p.steps).epsilon(p.delta, conversion);
}

/**
 * The smallest noise multiplier z whose ε after `steps` rounds at sampling rate q is at most
 * `targetEpsilon` (bisection on z; ε decreases with z). Precision 1e-4 relative.
 */
export function noiseForEpsilon(p: { targetEpsilon: number; samplingRate: number; steps: number; delta: number }): number {
  requirePositive('target epsilon', p.targetEpsilon);
  requireSamplingRate(p.samplingRate);
  requireSteps(p.steps);
  requireDelta(p.delta);
  if (p.steps === 0) throw new PrivacyParameterError('steps must be >= 1 to calibrate noise');
  const eps = (z: number): number => computeEpsilon({ noiseMultiplier: z, samplingRate: p.samplingRate, steps: p.steps, delta: p.delta }).epsilon;
  let lo = 0.01;
  let hi = 1;
  while (eps(hi) > p.targetEpsilon) {
    lo = hi;
    hi *= 2;
    if (hi > 1e6) throw new PrivacyParameterError(`no noise multiplier up to 1e6 reaches ε = ${p.targetEpsilon}`);
  }
  while ((hi - lo) / hi > 1e-4) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > p.targetEpsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
