/**
 * Rényi-DP of the distributed discrete Gaussian mechanism (DDGauss) of Kairouz, Liu and Steinke,
 * "The Distributed Discrete Gaussian Mechanism for Federated Learning with Secure Aggregation"
 * (ICML 2021; arXiv:2102.06387). Each of n summands clips its vector to L2 norm c, scales it by
 * 1/γ (γ = the quantisation step in value units), rounds it to the integers with (conditional)
 * randomised rounding, adds N_Z(0, σ²)^d — σ in integer steps — and only the sum is revealed.
 * Everything below is in integer steps (i.e. after the 1/γ scaling).
 *
 *   Rounding (Theorem 1, eq. 2; Proposition 22 for conditional rounding with parameter β): the
 *   rounded vector x̃ of a vector with ‖x‖₂ ≤ c' = c/γ has
 *     ‖x̃‖₂² ≤ Δ₂² = min{ c'² + d/4 + √(2 ln(1/β))·(c' + √d/2),  (c' + √d)² }.
 *   The second bound holds for every rounding (each coordinate moves by < 1); the first holds
 *   for a single randomised rounding with probability ≥ 1 − β, and with certainty when the site
 *   re-rounds until it holds (conditional randomised rounding, what fixedPoint.ts does): then β
 *   costs only retries (expected ≤ 1/(1 − β)), not δ. β = 0 means "no conditioning": only the
 *   deterministic bound is used.
 *   L1: x̃ is an integer vector, so |x̃_i| ≤ x̃_i² and ‖x̃‖₁ ≤ min(√d·Δ₂, Δ₂²).
 *
 *   Sum of n discrete Gaussians (Theorem 1, eq. 3): not itself a discrete Gaussian; its distance
 *   from N_Z(0, nσ²) enters through
 *     τ = 10 · Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)).
 *
 *   RDP at order α (Proposition 14 / eq. 17, as in the authors' reference accounting code):
 *     ε(α) = min{ α·Δ₂²/(2nσ²) + τd,
 *                 (α/2)·(Δ₂²/(nσ²) + 2·Δ₁·τ/(√n·σ) + τ²d),
 *                 (α/2)·(Δ₂/(√n·σ) + τ√d)² }
 *   The last is Theorem 1's ½ε²-zCDP with ε = Δ₂/(√nσ) + τ√d; Theorem 1's other form,
 *   ε² = Δ₂²/(nσ²) + 2τd, is implied by the first term (α ≥ 1). With n = 1 (τ = 0) this is the
 *   discrete Gaussian's α·Δ₂²/(2σ²) (Canonne, Kamath, Steinke 2020), and as σ grows τ → 0: the
 *   continuous Gaussian's α/(2z²) with z = √n·σ/Δ₂.
 *
 * Modular arithmetic: the sum is revealed mod 2^32 (SecAgg+). Reducing the noisy sum mod m is
 * post-processing, so a wrap-around never costs privacy; it costs only correctness, which
 * secaggParams.ts `checkNoWrap` guards (signal bound plus a tail margin for the noise).
 */
import { PrivacyParameterError, requirePositive } from './privacyErrors.js';

export interface DdgParameters {
  /** L2 norm bound c' of each summand's vector, in integer steps (clip / step). */
  scaledClip: number;
  /** Dimension d of the vector. */
  dimension: number;
  /** Conditional rounding parameter β in [0, 1); 0 = unconditional rounding (deterministic bound only). */
  beta: number;
  /** Integer weight every summand's rounded vector is multiplied by (at most); scales Δ₂ and Δ₁. */
  maxWeight: number;
  /** Per-summand discrete Gaussian parameter σ (N_Z(0, σ²)), in integer steps. */
  sigma: number;
  /** n: the fewest summands whose noise is in any sum that is revealed. */
  summands: number;
}

/** Δ₂ of one rounded vector of L2 norm ≤ scaledClip (in steps), Theorem 1 eq. 2 / Proposition 22. */
export function roundedL2NormBound(scaledClip: number, dimension: number, beta: number): number {
  requirePositive('scaled clip norm', scaledClip);
  requireDimension(dimension);
  requireBeta(beta);
  const sqrtD = Math.sqrt(dimension);
  const deterministic = scaledClip + sqrtD;
  if (beta === 0) return deterministic;
  const conditional2 = scaledClip * scaledClip + dimension / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (scaledClip + sqrtD / 2);
  return Math.min(deterministic, Math.sqrt(conditional2));
}

/** Δ₁ of an integer vector with L2 norm ≤ l2: ‖v‖₁ ≤ min(√d·‖v‖₂, ‖v‖₂²). */
export function roundedL1NormBound(l2: number, dimension: number): number {
  return l2 * Math.min(Math.sqrt(dimension), l2);
}

/** τ = 10·Σ_{k=1}^{n−1} exp(−2π²σ²·k/(k+1)) (Theorem 1 eq. 3). */
export function ddgTau(sigma: number, summands: number): number {
  let tau = 0;
  const a = -2 * Math.PI * Math.PI * sigma * sigma;
  for (let k = 1; k < summands; k++) tau += Math.exp((a * k) / (k + 1));
  return 10 * tau;
}

/** The sensitivities and τ the RDP bound uses (all in integer steps). */
export function ddgTerms(p: DdgParameters): { l2: number; l1: number; tau: number } {
  checkDdgParameters(p);
  const l2 = p.maxWeight * roundedL2NormBound(p.scaledClip, p.dimension, p.beta);
  return { l2, l1: roundedL1NormBound(l2, p.dimension), tau: ddgTau(p.sigma, p.summands) };
}

/** RDP of one DDGauss release at each order (Proposition 14). */
export function ddgRdp(p: DdgParameters, orders: readonly number[]): Float64Array {
  const { l2, l1, tau } = ddgTerms(p);
  return ddgRdpFromTerms({ l2, l1, tau, sigma: p.sigma, summands: p.summands, dimension: p.dimension }, orders);
}

/** Proposition 14 from explicit sensitivities (exposed so tests can bound an exact divergence). */
export function ddgRdpFromTerms(t: { l2: number; l1: number; tau: number; sigma: number; summands: number; dimension: number }, orders: readonly number[]): Float64Array {
  const sd = Math.sqrt(t.summands) * t.sigma; // stddev parameter of the summed noise
  const s2 = (t.l2 / sd) ** 2;
  const d = t.dimension;
  return Float64Array.from(orders, (alpha) => {
    if (!(alpha > 1)) throw new PrivacyParameterError(`RDP orders must be > 1, got ${alpha}`);
    const a = (alpha * s2) / 2 + t.tau * d;
    const b = (alpha / 2) * (s2 + (2 * t.l1 * t.tau) / sd + t.tau * t.tau * d);
    const c = (alpha / 2) * (t.l2 / sd + t.tau * Math.sqrt(d)) ** 2;
    return Math.min(a, b, c);
  });
}

/** Throws PrivacyParameterError naming the first parameter outside the bound's domain. */
export function checkDdgParameters(p: DdgParameters): void {
  requirePositive('DDG scaled clip norm', p.scaledClip);
  requireDimension(p.dimension);
  requireBeta(p.beta);
  if (!(Number.isInteger(p.maxWeight) && p.maxWeight >= 1)) throw new PrivacyParameterError(`DDG maxWeight must be an integer >= 1, got ${p.maxWeight}`);
  if (!(Number.isInteger(p.summands) && p.summands >= 1)) throw new PrivacyParameterError(`DDG summands (the reconstruction threshold) must be an integer >= 1, got ${p.summands}`);
  requirePositive('DDG noise σ (in quantisation steps)', p.sigma);
  // Below half a quantisation step the integer noise is mostly 0 and τ approaches 10(n − 1):
  // the bound is then useless anyway; refusing keeps it to the regime it was checked in.
  if (p.sigma < 0.5) throw new PrivacyParameterError(`DDG noise σ = ${p.sigma} quantisation steps is below 1/2: raise the noise multiplier, "bits" or lower "range"`);
}

function requireDimension(d: number): void {
  if (!(Number.isInteger(d) && d >= 1)) throw new PrivacyParameterError(`dimension must be an integer >= 1, got ${d}`);
}

function requireBeta(beta: number): void {
  if (!(typeof beta === 'number' && beta >= 0 && beta < 1)) throw new PrivacyParameterError(`conditional rounding β must be in [0, 1), got ${beta}`);
}
