/**
 * Fixed-point encoding of an update into Z_2^32 for secure aggregation, and decoding of the sum.
 *
 * Each value is clipped to [−range, range], scaled to q ∈ [−L, L] (L = 2^(bits−1) − 1, i.e.
 * divided by the step γ = range / L) with stochastic rounding (unbiased: E[q]·step = x; the
 * rounding bits come from the CSPRNG) and multiplied by the site's integer weight w. The vector
 * carries one extra element, w itself, so the weights' sum is aggregated under the same masks.
 * Elements are stored as two's-complement uint32; the modular sum read back as int32 is exact
 * while the bound of secaggParams.ts holds.
 *
 * With `l2Clip` (distributed DP), the rounding is the *conditional* randomised rounding of
 * Kairouz, Liu and Steinke (2021, Theorem 1 / Proposition 22): the whole vector is rounded again
 * until its L2 norm (in steps) is at most the bound Δ₂ of ddgAccountant.ts `roundedL2NormBound`
 * for the clip and `roundingBeta`, so the sensitivity the ledger charges holds with certainty
 * (β only costs retries, expected ≤ 1/(1 − β)); `roundingBeta` = 0 keeps a single rounding and
 * the deterministic bound (c/γ + √d). The same β must go into the charged mechanism.
 */
import { SecureRandomStream } from '../../privacy/secureRandom.js';
import { DiscreteGaussianSampler } from '../../privacy/discreteGaussian.js';
import { roundedL2NormBound } from '../../privacy/ddgAccountant.js';
import { quantLevels } from './secaggParams.js';

/** β of conditional randomised rounding by default: e^(−1/2), the authors' default. */
export const DEFAULT_ROUNDING_BETA = Math.exp(-0.5);

/** Rounding attempts before giving up (each fails with probability ≤ β: e^(−500) at the default). */
const MAX_ROUNDING_TRIES = 1000;

export interface EncodedUpdate {
  /** d + 1 words: w·q_i for every value, then w. */
  words: Uint32Array;
  /** Values that were outside [−range, range] and got clipped (worth logging: raise "range"). */
  clipped: number;
  /** Roundings it took to meet the norm bound (1 without `l2Clip`). */
  roundings: number;
}

export interface EncodeParams {
  bits: number;
  range: number;
  /** Stddev of the discrete Gaussian noise added to every value, in quantisation steps (0/absent: none). */
  noiseStddev?: number;
  /** L2 norm the values were clipped to (float units): turns on conditional randomised rounding. */
  l2Clip?: number;
  /** β of conditional rounding, in [0, 1) (default DEFAULT_ROUNDING_BETA; 0 = one unconditional rounding). */
  roundingBeta?: number;
}

/**
 * Encodes `values` with weight `weight`. With `noiseStddev` > 0, adds discrete Gaussian noise
 * N_Z(0, noiseStddev²) (in quantisation steps) to every weighted value — the integer-domain
 * noise of distributed DP, exact and from the CSPRNG.
 */
export function encodeUpdate(values: Float32Array, weight: number, p: EncodeParams): EncodedUpdate {
  const d = values.length;
  const levels = quantLevels(p.bits);
  const scale = levels / p.range;
  const words = new Uint32Array(d + 1);
  const ints = new Int32Array(words.buffer, 0, d + 1);
  const rng = new SecureRandomStream();
  // Per-value clipping to [−L, L] only shortens the vector, so the L2 bound still holds after it.
  let clipped = 0;
  let normSq = 0;
  for (let i = 0; i < d; i++) {
    let x = values[i] * scale;
    if (x > levels || x < -levels) {
      x = x > 0 ? levels : -levels;
      clipped++;
    } else if (x !== x) throw new RangeError(`value ${i} is not a number`);
    normSq += x * x;
  }
  let boundSq = Infinity;
  if (p.l2Clip !== undefined && d > 0) {
    const scaledClip = p.l2Clip * scale;
    const beta = p.roundingBeta ?? DEFAULT_ROUNDING_BETA;
    // A vector longer than the clip (the caller did not clip) would make the retries hopeless.
    if (Math.sqrt(normSq) > scaledClip * (1 + 1e-5)) throw new RangeError(`update L2 norm ${(Math.sqrt(normSq) / scale).toPrecision(6)} exceeds the clip ${p.l2Clip}: clip it before encoding`);
    const bound = roundedL2NormBound(scaledClip, d, beta);
    // (1 − 1e-9): the float64 sum of squares may be off by a few ulps; never accept above the bound.
    if (beta > 0) boundSq = bound * bound * (1 - 1e-9);
  }
  let roundings = 0;
  for (;;) {
    roundings++;
    let roundedSq = 0;
    // Block by block of random words: floor(x + u) with u uniform in [0, 1) rounds x up with
    // probability x − floor(x), i.e. stochastic rounding, in one floor per value.
    for (let start = 0; start < d; ) {
      const block = rng.nextBlock();
      const end = Math.min(d, start + block.length);
      for (let i = start, j = 0; i < end; i++, j++) {
        let x = values[i] * scale;
        if (x > levels) x = levels;
        else if (x < -levels) x = -levels;
        const q = Math.floor(x + block[j] * 2.3283064365386963e-10);
        ints[i] = q;
        roundedSq += q * q;
      }
      start = end;
    }
    if (roundedSq <= boundSq) break;
    if (roundings >= MAX_ROUNDING_TRIES) throw new RangeError(`conditional rounding did not meet the norm bound in ${MAX_ROUNDING_TRIES} tries`);
  }
  if (weight !== 1) for (let i = 0; i < d; i++) ints[i] *= weight;
  if (p.noiseStddev && p.noiseStddev > 0) {
    const sampler = new DiscreteGaussianSampler(p.noiseStddev);
    for (let i = 0; i < d; i++) ints[i] += sampler.sample();
  }
  ints[d] = weight;
  return { words, clipped, roundings };
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
