/**
 * SecAgg+ parameters: the experiment's `secagg` block, the per-round values the coordinator
 * sends in `fit_ins`, and the checks that make the protocol sound — the integer sum cannot wrap
 * and the reconstruction threshold is a strict majority of every share group.
 *
 * Encoding (see fixedPoint.ts): values clipped to [−range, range] become signed integers
 * q ∈ [−L, L], L = 2^(bits−1) − 1; a site sends w·q with its weight w ≤ maxWeight, so
 * |Σ_k w_k q_k| ≤ n · maxWeight · L, which must stay below 2^31 (minus a margin for integer
 * DP noise) for the int32 reading of the Z_2^32 sum to be exact.
 *
 * Wrap-around and privacy: the coordinator learns the noisy integer sum reduced mod 2^32, a
 * post-processing of the noisy sum, so a wrap can never cost privacy (the distributed discrete
 * Gaussian's bound in shared/privacy/ddgAccountant.ts needs no modular term); it would only
 * corrupt the aggregate. `checkNoWrap` keeps that from happening: the signal is bounded
 * deterministically (per-value clipping to [−L, L] survives stochastic rounding), and the summed
 * noise, a sum of discrete Gaussians each σ-subgaussian (Canonne, Kamath, Steinke 2020), exceeds
 * 16·σ·√n with probability below 2·e^(−128) per value. Kairouz et al. (2021, Section 4) instead
 * choose γ so k standard deviations of the aggregate fit in the modulus and accept rare wraps
 * ("modular clipping"); here a wrap is ruled out up front and the configuration refused.
 */
import { SecAggConfigError } from './secaggErrors.js';

/** Experiment configuration (all optional; defaults below). */
export interface SecAggConfig {
  /** Quantisation bits per value (sign included), 2–24. */
  bits?: number;
  /** Values are clipped to [−range, range] before quantisation. */
  range?: number;
  /** Neighbours per site in the SecAgg+ graph (even); default: complete graph up to 20 sites, else 2⌈1.5·log2 n⌉. */
  neighbours?: number;
  /** Shares needed to reconstruct a secret; default ⌊2h/3⌋ + 1 of each share group of h = neighbours + 1 (the bound for an active coordinator). */
  threshold?: number;
  /** Seconds each key phase (advertise, share, unmask) waits for missing sites. */
  phaseTimeoutSeconds?: number;
}

export const SECAGG_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    bits: { type: 'integer', minimum: 2, maximum: 24 },
    range: { type: 'number', exclusiveMinimum: 0 },
    neighbours: { type: 'integer', minimum: 2, maximum: 254 },
    threshold: { type: 'integer', minimum: 2, maximum: 255 },
    phaseTimeoutSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 3600 },
  },
} as const;

export const SECAGG_DEFAULTS = { bits: 16, range: 1, phaseTimeoutSeconds: 30 } as const;

/** What every site of a round needs to encode and mask its update (sent in fit_ins). */
export interface SecAggRoundParams {
  mode: 'secagg';
  /** Random per-round session id: salts every key derivation and is signed into every message. */
  session: string;
  bits: number;
  range: number;
  /** Weights (example counts) above this are capped; 1 when DP asks for equal weights. */
  maxWeight: number;
  /** Standard deviation of the integer (discrete Gaussian) noise each site adds, in quantisation steps; 0 = none. */
  noiseStddev: number;
}

export const SECAGG_ROUND_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'session', 'bits', 'range', 'maxWeight', 'noiseStddev'],
  properties: {
    mode: { const: 'secagg' },
    session: { type: 'string', pattern: '^[A-Za-z0-9_-]{22,64}$' },
    bits: { type: 'integer', minimum: 2, maximum: 24 },
    range: { type: 'number', exclusiveMinimum: 0 },
    maxWeight: { type: 'integer', minimum: 1, maximum: 2 ** 31 },
    noiseStddev: { type: 'number', minimum: 0 },
  },
} as const;

const INT32_MAX = 2 ** 31 - 1;
/** Integer DP noise is kept within this many standard deviations of the sum (P(exceed) < 1e-50). */
const NOISE_TAIL_SIGMAS = 16;

export function quantLevels(bits: number): number {
  return 2 ** (bits - 1) - 1;
}

/** The quantisation step γ in value units: one integer is worth range / L. */
export function quantStep(bits: number, range: number): number {
  return range / quantLevels(bits);
}

/** Largest weight that keeps the sum of `sites` encoded vectors (plus noise) from wrapping. */
export function maxWeightFor(sites: number, bits: number, noiseStddevTotal = 0): number {
  const room = INT32_MAX - NOISE_TAIL_SIGMAS * noiseStddevTotal;
  return Math.floor(room / (sites * quantLevels(bits)));
}

/** Throws SecAggConfigError naming the problem when the sum of `sites` vectors could wrap. */
export function checkNoWrap(sites: number, p: Pick<SecAggRoundParams, 'bits' | 'maxWeight' | 'noiseStddev'>): void {
  const bound = sites * p.maxWeight * quantLevels(p.bits) + NOISE_TAIL_SIGMAS * p.noiseStddev * Math.sqrt(sites);
  if (!(bound <= INT32_MAX)) {
    throw new SecAggConfigError(`SecAgg+ sum of ${sites} sites could wrap: ${sites} × weight ${p.maxWeight} × ${quantLevels(p.bits)} levels (+ noise margin) = ${bound.toExponential(3)} > 2^31 − 1; lower "bits" or the number of sites`);
  }
}

/** Neighbours per site for n participants (n − 1 = complete graph). */
export function neighboursFor(n: number, configured?: number): number {
  if (n < 2) return 0;
  const k = configured ?? (n <= 21 ? n - 1 : 2 * Math.ceil(1.5 * Math.log2(n)));
  return Math.min(n - 1, k);
}

/**
 * Bonawitz et al. (CCS 2017) against an actively malicious server: with the consistency round,
 * a threshold t > 2h/3 of each group of h holders keeps two conflicting survivor sets from both
 * gathering t signatures while fewer than h/3 holders collude with the coordinator.
 */
export function activeThreshold(holders: number): number {
  return Math.floor((2 * holders) / 3) + 1;
}

/** The smallest share group (neighbours + the site) a site accepts by default. */
export const MIN_HOLDERS = 3;

/** Reconstruction threshold for share groups of `holders` (= neighbours + 1) members. */
export function thresholdFor(holders: number, configured?: number): number {
  const t = configured ?? Math.min(holders, activeThreshold(holders));
  checkThreshold(t, holders);
  return t;
}

/** What a site accepts of a roster the coordinator composed (the site policy may change these). */
export interface SiteSecAggRules {
  /** Smallest share group: the site and its neighbours. */
  minHolders: number;
  /** Smallest reconstruction threshold for a group of `holders`. */
  minThreshold: (holders: number) => number;
}

export const DEFAULT_SITE_SECAGG_RULES: SiteSecAggRules = { minHolders: MIN_HOLDERS, minThreshold: activeThreshold };

/**
 * A strict majority of each share group and no more than the group: below a majority, a
 * coordinator colluding with fewer sites than promised could reconstruct both secrets of a site.
 */
export function checkThreshold(t: number, holders: number): void {
  if (!Number.isInteger(t) || t <= holders / 2 || t > holders) {
    throw new SecAggConfigError(`SecAgg+ threshold ${t} must be a strict majority of the ${holders} holders of each site's shares (${Math.floor(holders / 2) + 1}–${holders})`);
  }
  if (holders > 255) throw new SecAggConfigError(`SecAgg+ share groups hold at most 255 shares (GF(2^8) Shamir); got ${holders}; lower "neighbours"`);
}
