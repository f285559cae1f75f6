/**
 * What a privacy ledger charges: the mechanism that actually ran for one release, with the
 * parameters its Rényi-DP bound needs. A round's releases (the update, the adaptive-clipping
 * bit, ...) are a list of mechanisms, composed by adding their RDP curves; rounds compose the
 * same way. Every charge is at q = 1 (no subsampling amplification): the sites know they were
 * sampled and the coordinator publishes who was.
 *
 *   gaussian                        N(0, (z·Δ)²) on a query of L2 sensitivity Δ, one release:
 *                                   RDP α/(2z²)
 *   distributed-discrete-gaussian   SecAgg+ distributed DP: each summand clips to `clip`, quantises
 *                                   with step `step` (conditional randomised rounding with `beta`,
 *                                   0 = unconditional), multiplies by its weight ≤ `maxWeight`, adds
 *                                   N_Z(0, sigmaSteps²) per coordinate; any revealed sum holds at
 *                                   least `minSummands` of them: ddgAccountant.ts (Kairouz, Liu,
 *                                   Steinke 2021, Proposition 14)
 */
import { ddgRdp, ddgTerms, type DdgParameters } from './ddgAccountant.js';
import { PrivacyParameterError, requirePositive } from './privacyErrors.js';
import { DEFAULT_ORDERS, RdpAccountant, epsilonFromRdp, type EpsilonResult } from './rdpAccountant.js';

export type PrivacyMechanism =
  /** stddev / L2 sensitivity of one release. */
  | { kind: 'gaussian'; noiseMultiplier: number }
  | {
      kind: 'distributed-discrete-gaussian';
      /** L2 clip norm C of each summand's float vector. */
      clip: number;
      /** Quantisation step γ in float units (range / levels): value = integer · step. */
      step: number;
      /** Number of quantised values d (the model's parameters; the weight word is not noised). */
      dimension: number;
      /** Per-summand discrete Gaussian parameter σ, in quantisation steps. */
      sigmaSteps: number;
      /** t: any sum that can be revealed holds at least this many noised summands. */
      minSummands: number;
      /** Conditional randomised rounding parameter β in [0, 1); 0 = unconditional rounding. */
      beta: number;
      /** Integer weight each rounded vector may be multiplied by (1 under DP's equal weights). */
      maxWeight: number;
    };

export type DistributedDiscreteGaussian = Extract<PrivacyMechanism, { kind: 'distributed-discrete-gaussian' }>;

/** A Gaussian release of noise stddev `stddev` on a query of L2 sensitivity `sensitivity`. */
export function gaussianMechanism(p: { stddev: number; sensitivity: number }): PrivacyMechanism {
  requirePositive('Gaussian noise stddev', p.stddev);
  requirePositive('Gaussian sensitivity', p.sensitivity);
  return { kind: 'gaussian', noiseMultiplier: p.stddev / p.sensitivity };
}

/**
 * The adaptive-clipping bit a site reports, b − 1/2 with b = 1[‖Δ‖ ≤ C] (sensitivity 1/2, Andrew
 * et al. 2021), noised with stddev `noiseStddev`: a Gaussian with z = 2·noiseStddev.
 */
export function clipBitMechanism(noiseStddev: number): PrivacyMechanism {
  return gaussianMechanism({ stddev: noiseStddev, sensitivity: 0.5 });
}

/**
 * A site's SecAgg+ distributed-DP release, from what the site knows: its clip C, the model size,
 * the quantisation (bits and range, or the step directly), the integer noise it adds per value
 * (in steps), the threshold t it verified in the roster, the rounding β its encoder used and the
 * largest weight it may apply.
 */
export function distributedDiscreteGaussian(p: {
  clip: number;
  dimension: number;
  /** Quantisation step in float units: range / (2^(bits−1) − 1). */
  step: number;
  sigmaSteps: number;
  minSummands: number;
  beta?: number;
  maxWeight?: number;
}): DistributedDiscreteGaussian {
  const m: DistributedDiscreteGaussian = { kind: 'distributed-discrete-gaussian', clip: p.clip, step: p.step, dimension: p.dimension, sigmaSteps: p.sigmaSteps, minSummands: p.minSummands, beta: p.beta ?? 0, maxWeight: p.maxWeight ?? 1 };
  checkMechanism(m);
  return m;
}

function ddgParameters(m: DistributedDiscreteGaussian): DdgParameters {
  return { scaledClip: m.clip / m.step, dimension: m.dimension, beta: m.beta, maxWeight: m.maxWeight, sigma: m.sigmaSteps, summands: m.minSummands };
}

/** Throws PrivacyParameterError when the mechanism's parameters are outside its bound's domain. */
export function checkMechanism(m: PrivacyMechanism): void {
  if (m.kind === 'gaussian') return requirePositive('noise multiplier z', m.noiseMultiplier);
  if (m.kind !== 'distributed-discrete-gaussian') throw new PrivacyParameterError(`unknown privacy mechanism kind ${JSON.stringify((m as { kind: unknown }).kind)}`);
  requirePositive('DDG clip norm', m.clip);
  requirePositive('DDG quantisation step', m.step);
  ddgTerms(ddgParameters(m));
}

/**
 * The continuous-Gaussian noise multiplier with the same leading term (√n·σ/Δ₂ for DDGauss;
 * z itself for a Gaussian) — for display, never for accounting.
 */
export function equivalentNoiseMultiplier(m: PrivacyMechanism): number {
  if (m.kind === 'gaussian') return m.noiseMultiplier;
  const { l2 } = ddgTerms(ddgParameters(m));
  return (Math.sqrt(m.minSummands) * m.sigmaSteps) / l2;
}

const memo = new Map<string, Float64Array>();

/** RDP of one release of `m` at each order (memoised at the default orders). */
export function mechanismRdp(m: PrivacyMechanism, orders: readonly number[] = DEFAULT_ORDERS): Float64Array {
  const key = orders === DEFAULT_ORDERS ? JSON.stringify(m) : null;
  const hit = key !== null ? memo.get(key) : undefined;
  if (hit) return hit;
  checkMechanism(m);
  let v: Float64Array;
  if (m.kind === 'gaussian') {
    const z2 = m.noiseMultiplier * m.noiseMultiplier;
    v = Float64Array.from(orders, (alpha) => {
      if (!(alpha > 1)) throw new PrivacyParameterError(`RDP orders must be > 1, got ${alpha}`);
      return alpha / (2 * z2);
    });
  } else v = ddgRdp(ddgParameters(m), orders);
  if (key !== null) {
    if (memo.size >= 4096) memo.clear();
    memo.set(key, v);
  }
  return v;
}

/** Adds the releases of one round to an accountant (RDP composition, q = 1). */
export function composeMechanisms(acc: RdpAccountant, mechanisms: readonly PrivacyMechanism[]): RdpAccountant {
  for (const m of mechanisms) {
    if (m.kind === 'gaussian') acc.compose(1, m.noiseMultiplier, 1);
    else acc.composeRdp(mechanismRdp(m, acc.orders));
  }
  return acc;
}

/** (ε, δ) of a sequence of rounds, each a list of mechanisms released in it. */
export function epsilonOfRounds(rounds: readonly (readonly PrivacyMechanism[])[], delta: number): EpsilonResult {
  const acc = new RdpAccountant();
  for (const r of rounds) composeMechanisms(acc, r);
  return epsilonFromRdp(acc.rdp, acc.orders, delta);
}

/** Parses a mechanism read from a file or the wire; throws PrivacyParameterError naming what is wrong. */
export function parseMechanism(x: unknown, where = 'privacy mechanism'): PrivacyMechanism {
  if (typeof x !== 'object' || x === null) throw new PrivacyParameterError(`${where}: not an object`);
  const o = x as Record<string, unknown>;
  const num = (k: string): number => {
    if (typeof o[k] !== 'number') throw new PrivacyParameterError(`${where}: "${k}" must be a number`);
    return o[k];
  };
  let m: PrivacyMechanism;
  if (o.kind === 'gaussian') m = { kind: 'gaussian', noiseMultiplier: num('noiseMultiplier') };
  else if (o.kind === 'distributed-discrete-gaussian') {
    m = { kind: 'distributed-discrete-gaussian', clip: num('clip'), step: num('step'), dimension: num('dimension'), sigmaSteps: num('sigmaSteps'), minSummands: num('minSummands'), beta: num('beta'), maxWeight: num('maxWeight') };
  } else throw new PrivacyParameterError(`${where}: unknown kind ${JSON.stringify(o.kind)}`);
  checkMechanism(m);
  return m;
}
