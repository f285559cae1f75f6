/**
 * How an experiment protects its sites (client-level DP), and what each round tells the sites.
 *
 *   central      sites clip; the coordinator adds N(0, (zC)²) to the sum (trusted coordinator)
 *   distributed  under SecAgg+ only: each site adds discrete Gaussian noise of stddev zC/√t to
 *                its clipped, quantised update, t the reconstruction threshold it verified (any
 *                sum the coordinator can unmask holds ≥ t members), so every sum carries ≥ zC;
 *                the sites compute this themselves (edge-client/federation/siteNoise.ts)
 *   local        each site adds N(0, (zC)²) to its own clipped update (each update is itself DP)
 *
 * With privacy on, updates are averaged with equal weights (example counts would change the
 * sensitivity); the noise multiplier z is given or derived from a target ε over planned rounds.
 */
import { PrivacyParameterError, requireDelta, requirePositive } from './privacyErrors.js';
import { ADAPTIVE_CLIPPING_SCHEMA, type AdaptiveClippingConfig } from './adaptiveClipping.js';

export type PrivacyMode = 'central' | 'distributed' | 'local';

export interface PrivacyConfig {
  mode: PrivacyMode;
  /** L2 clip norm C of each site's update. */
  clip: number;
  noiseMultiplier?: number;
  /** Alternative to noiseMultiplier: the ε to reach after `plannedRounds` rounds. */
  targetEpsilon?: number;
  plannedRounds?: number;
  delta: number;
  /** distributed mode: dropouts the noise must survive (default 0). */
  maxDropouts?: number;
  /** Let the clip norm track a quantile of the update norms (`clip` is then the initial value). */
  adaptiveClipping?: AdaptiveClippingConfig;
}

/** The privacy part of a round's instructions to a site. */
export interface RoundPrivacy {
  mode: PrivacyMode;
  clip: number;
  noiseMultiplier: number;
  /** Standard deviation of the noise this site adds (0 in central mode). */
  noiseStddev: number;
  /** The round's sampling rate (sites asked / sites available). */
  samplingRate: number;
  delta: number;
  /** Adaptive clipping: stddev of the noise this site adds to its clipped/not-clipped bit. */
  countNoiseStddev?: number;
}

export const PRIVACY_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'clip', 'delta'],
  properties: {
    mode: { enum: ['central', 'distributed', 'local'] },
    clip: { type: 'number', exclusiveMinimum: 0 },
    noiseMultiplier: { type: 'number', exclusiveMinimum: 0 },
    targetEpsilon: { type: 'number', exclusiveMinimum: 0 },
    plannedRounds: { type: 'integer', minimum: 1 },
    delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    maxDropouts: { type: 'integer', minimum: 0 },
    adaptiveClipping: ADAPTIVE_CLIPPING_SCHEMA,
  },
} as const;

export const ROUND_PRIVACY_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'clip', 'noiseMultiplier', 'noiseStddev', 'samplingRate', 'delta'],
  properties: {
    mode: { enum: ['central', 'distributed', 'local'] },
    clip: { type: 'number', exclusiveMinimum: 0 },
    noiseMultiplier: { type: 'number', exclusiveMinimum: 0 },
    noiseStddev: { type: 'number', minimum: 0 },
    samplingRate: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
    delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    countNoiseStddev: { type: 'number', minimum: 0 },
  },
} as const;

export function checkPrivacyConfig(p: PrivacyConfig): void {
  requirePositive('privacy clip norm', p.clip);
  requireDelta(p.delta);
  if (p.noiseMultiplier === undefined && p.targetEpsilon === undefined) throw new PrivacyParameterError('privacy needs "noiseMultiplier" or "targetEpsilon" (with "plannedRounds")');
  if (p.noiseMultiplier !== undefined) requirePositive('privacy noise multiplier', p.noiseMultiplier);
  if (p.targetEpsilon !== undefined && p.plannedRounds === undefined) throw new PrivacyParameterError('"targetEpsilon" needs "plannedRounds" to calibrate the noise');
}

/**
 * The share one of `sampledSites` sites adds in this mode, for a total noise of `full` stddev
 * (0 in central mode, where the coordinator adds it).
 */
export function siteNoiseShare(p: { mode: PrivacyMode; maxDropouts?: number }, full: number, sampledSites: number): number {
  if (p.mode === 'central') return 0;
  if (p.mode === 'local') return full;
  const survivors = sampledSites - (p.maxDropouts ?? 0);
  if (survivors < 1) throw new PrivacyParameterError(`distributed DP: ${sampledSites} sampled sites cannot tolerate ${p.maxDropouts} dropouts`);
  return full / Math.sqrt(survivors);
}

/** The update noise one site adds: z·C split as the mode says. */
export function siteNoiseStddev(p: { mode: PrivacyMode; clip: number; maxDropouts?: number }, noiseMultiplier: number, sampledSites: number): number {
  return siteNoiseShare(p, noiseMultiplier * p.clip, sampledSites);
}
