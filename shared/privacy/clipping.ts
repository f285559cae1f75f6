/**
 * L2 clipping of a site's whole update (the flat delta) to norm C: Δ · min(1, C / ‖Δ‖₂).
 * Bounds each site's contribution — the sensitivity the noise is calibrated to.
 */
import { requirePositive } from './privacyErrors.js';

export function l2Norm(v: Float32Array): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/** Clips `delta` in place; returns its norm before clipping and the factor applied. */
export function clipToNorm(delta: Float32Array, clip: number): { norm: number; factor: number } {
  requirePositive('clip norm C', clip);
  const norm = l2Norm(delta);
  if (!Number.isFinite(norm)) throw new RangeError('cannot clip an update with non-finite values');
  const factor = norm > clip ? clip / norm : 1;
  if (factor < 1) for (let i = 0; i < delta.length; i++) delta[i] *= factor;
  return { norm, factor };
}
