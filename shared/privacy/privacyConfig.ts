/**
 * How an experiment protects its sites (client-level DP), and what each round tells the sites.
 *
 *   central      sites clip; the coordinator adds N(0, (zC)²) to the sum (trusted coordinator)
 *   distributed  each of the k sampled sites adds N(0, (zC)² / (k − maxDropouts)) to its clipped
 *                update, so the sum carries at least the full noise even if up to maxDropouts
 *                sites drop out; the coordinator never sees un-noised data
 *   local        each site adds N(0, (zC)²) to its own clipped update (each update is itself DP)
 *
 * With privacy on, updates are averaged with equal weights (example counts would change the
 * sensitivity); the noise multiplier z is given or derived from a target ε over planned rounds.
 */
import { PrivacyParameterError, requireDelta, requirePositive } from './privacyErrors.js';

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
  },
} as const;

export function checkPrivacyConfig(p: PrivacyConfig): void {
  requirePositive('privacy clip norm', p.clip);
  requireDelta(p.delta);
  if (p.noiseMultiplier === undefined && p.targetEpsilon === undefined) throw new PrivacyParameterError('privacy needs "noiseMultiplier" or "targetEpsilon" (with "plannedRounds")');
  if (p.noiseMultiplier !== undefined) requirePositive('privacy noise multiplier', p.noiseMultiplier);
  if (p.targetEpsilon !== undefined && p.plannedRounds === undefined) throw new PrivacyParameterError('"targetEpsilon" needs "plannedRounds" to calibrate the noise');
}

/** The noise one of `sampledSites` sites adds in this mode. */
export function siteNoiseStddev(p: { mode: PrivacyMode; clip: number; maxDropouts?: number }, noiseMultiplier: number, sampledSites: number): number {
  const full = noiseMultiplier * p.clip;
  if (p.mode === 'central') return 0;
  if (p.mode === 'local') return full;
  const survivors = sampledSites - (p.maxDropouts ?? 0);
  if (survivors < 1) throw new PrivacyParameterError(`distributed DP: ${sampledSites} sampled sites cannot tolerate ${p.maxDropouts} dropouts`);
  return full / Math.sqrt(survivors);
}
