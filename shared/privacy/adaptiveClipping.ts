/**
 * Adaptive clipping (Andrew, Thakkar, McMahan, Ramaswamy 2021, "Differentially Private
 * Learning with Adaptive Clipping"): the clip norm follows a target quantile γ of the sites'
 * update norms. Each site reports whether its update fitted under the current clip
 * (b = 1[‖Δ‖ ≤ C]); the noised mean b̄ of those bits moves the clip geometrically:
 *   C ← C · exp(−η (b̄ − γ)).
 * The bits are released with Gaussian noise σ_b too, and the privacy cost stays that of one
 * Gaussian mechanism with the experiment's z when the update noise uses
 *   z_Δ = (z⁻² − (2σ_b)⁻²)^(−1/2)
 * (the bits, centred, have sensitivity 1/2). Requires 2σ_b > z.
 */
import { PrivacyParameterError } from './privacyErrors.js';

export interface AdaptiveClippingConfig {
  /** γ: the quantile of update norms the clip should track (default 0.5). */
  targetQuantile?: number;
  /** η: geometric learning rate of the clip (default 0.2). */
  learningRate?: number;
  /** σ_b: noise on the count of unclipped updates (default: max(expected sites / 20, z), so 2σ_b > z). */
  countStddev?: number;
}

export const ADAPTIVE_CLIPPING_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    targetQuantile: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
    learningRate: { type: 'number', exclusiveMinimum: 0 },
    countStddev: { type: 'number', exclusiveMinimum: 0 },
  },
} as const;

/** Noise multiplier left for the update once the count takes its share of the budget. */
export function updateNoiseMultiplier(z: number, countStddev: number): number {
  const rest = z ** -2 - (2 * countStddev) ** -2;
  if (!(rest > 0)) throw new PrivacyParameterError(`adaptive clipping needs 2σ_b > z (σ_b = ${countStddev}, z = ${z}); raise countStddev or the noise multiplier`);
  return rest ** -0.5;
}

/** Andrew et al.'s suggestion (expected sites / 20), raised to z so the update keeps most of the budget. */
export function defaultCountStddev(expectedSites: number, noiseMultiplier: number): number {
  return Math.max(expectedSites / 20, noiseMultiplier);
}

/** The next clip norm from the noised fraction of updates that were not clipped. */
export function nextClip(clip: number, noisedUnclippedFraction: number, c: AdaptiveClippingConfig): number {
  const gamma = c.targetQuantile ?? 0.5;
  const eta = c.learningRate ?? 0.2;
  return clip * Math.exp(-eta * (noisedUnclippedFraction - gamma));
}
