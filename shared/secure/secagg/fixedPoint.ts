/**
 * Fixed-point encoding of an update into Z_2^32 for secure aggregation, and decoding of the sum.
 *
 * Each value is clipped to [−range, range], scaled to q ∈ [−L, L] (L = 2^(bits−1) − 1) with
 * stochastic rounding (unbiased: E[q]·step = x; the rounding bits come from the CSPRNG) and
 * multiplied by the site's integer weight w. The vector carries one extra element, w itself, so
 * the weights' sum is aggregated under the same masks. Elements are stored as two's-complement
 * uint32; the modular sum read back as int32 is exact while the bound of secaggParams.ts holds.
 */
import { SecureRandomStream } from '../../privacy/secureRandom.js';
import { DiscreteGaussianSampler } from '../../privacy/discreteGaussian.js';
import { quantLevels } from './secaggParams.js';

export interface EncodedUpdate {
  /** d + 1 words: w·q_i for every value, then w. */
  words: Uint32Array;
  /** Values that were outside [−range, range] and got clipped (worth logging: raise "range"). */
  clipped: number;
}

/**
 * Encodes `values` with weight `weight`. With `noiseStddev` > 0, adds discrete Gaussian noise
 * N_Z(0, noiseStddev²) (in quantisation steps) to every weighted value — the integer-domain
 * noise of distributed DP, exact and from the CSPRNG.
 */
export function encodeUpdate(values: Float32Array, weight: number, p: { bits: number; range: number; noiseStddev?: number }): EncodedUpdate {
  const d = values.length;
  const levels = quantLevels(p.bits);
  const scale = levels / p.range;
  const words = new Uint32Array(d + 1);
  const ints = new Int32Array(words.buffer, 0, d + 1);
  const rng = new SecureRandomStream();
  let clipped = 0;
  // Block by block of random words: floor(x + u) with u uniform in [0, 1) rounds x up with
  // probability x − floor(x), i.e. stochastic rounding, in one floor per value.
  for (let start = 0; start < d; ) {
    const block = rng.nextBlock();
    const end = Math.min(d, start + block.length);
    for (let i = start, j = 0; i < end; i++, j++) {
      let x = values[i] * scale;
      if (x > levels || x < -levels) {
        x = x > 0 ? levels : -levels;
        clipped++;
      } else if (x !== x) throw new RangeError(`value ${i} is not a number`);
      ints[i] = Math.floor(x + block[j] * 2.3283064365386963e-10) * weight;
    }
    start = end;
  }
  if (p.noiseStddev && p.noiseStddev > 0) {
    const sampler = new DiscreteGaussianSampler(p.noiseStddev);
    for (let i = 0; i < d; i++) ints[i] += sampler.sample();
  }
  ints[d] = weight;
  return { words, clipped };
}

/** Decodes an aggregated sum: Σ_k w_k·x_k per value (float64) and Σ_k w_k. */
export function decodeSum(sum: Uint32Array, p: { bits: number; range: number }): { weightedSum: Float64Array; totalWeight: number } {
  const d = sum.length - 1;
  const ints = new Int32Array(sum.buffer, sum.byteOffset, sum.length);
  const step = p.range / quantLevels(p.bits);
  const weightedSum = new Float64Array(d);
  for (let i = 0; i < d; i++) weightedSum[i] = ints[i] * step;
  return { weightedSum, totalWeight: ints[d] };
}
