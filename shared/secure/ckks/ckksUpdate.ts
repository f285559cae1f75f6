/**
 * What a site encrypts and how the aggregate becomes the next model. A site sends
 * [w * clip(delta, range), w] with w = min(examples, maxWeight) (1 under DP); the decrypted sum
 * is [sum w_i delta_i, sum w_i], so the next model is base + sum / W: FedAvg weighted by
 * (bounded) example counts, computed by every site from the same ciphertexts.
 */
import { CkksError } from './ckksErrors.js';
import type { CkksRoundParams } from './ckksParams.js';

export function encodeCkksUpdate(delta: Float32Array, numExamples: number, p: Pick<CkksRoundParams, 'range' | 'maxWeight'>): { values: Float64Array; clipped: number; weight: number } {
  const weight = Math.min(numExamples, p.maxWeight);
  const values = new Float64Array(delta.length + 1);
  let clipped = 0;
  for (let i = 0; i < delta.length; i++) {
    const x = delta[i];
    const c = x > p.range ? p.range : x < -p.range ? -p.range : x;
    if (c !== x) clipped++;
    values[i] = weight * c;
  }
  values[delta.length] = weight;
  return { values, clipped, weight };
}

/** The next global model from the base and the decrypted aggregate [sum w_i delta_i, sum w_i]. */
export function applyCkksAggregate(base: Float32Array, sum: Float64Array): Float32Array {
  if (sum.length !== base.length + 1) throw new CkksError(`aggregate has ${sum.length} values; the model needs ${base.length + 1}`);
  // Weights are integers: the CKKS error (~1e-7) is removed by rounding.
  const total = Math.round(sum[base.length]);
  if (!(total >= 1)) throw new CkksError(`aggregate weight ${sum[base.length]} is not a positive count: the aggregate is not a sum of fedmed updates`);
  const next = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) next[i] = base[i] + sum[i] / total;
  if (!next.every(Number.isFinite)) throw new CkksError('the decrypted aggregate gives non-finite parameters');
  return next;
}
