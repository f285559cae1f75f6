/**
 * What a site encrypts and how the aggregate becomes the next model. A site sends
 * [w * clip(delta, range), w] with w = min(examples, maxWeight) (1 under DP); the decrypted sum
 * is [sum w_i delta_i, sum w_i], so the next model is base + sum / W: FedAvg weighted by
 * (bounded) example counts, computed by every site from the same ciphertexts.
 */
import { createHash } from 'node:crypto';
import { encryptedVersionId } from '../../model/modelHash.js';
import type { ModelSpec } from '../../model/modelSpec.js';
import { CkksError } from './ckksErrors.js';
import type { CkksRoundParams } from './ckksParams.js';
import type { CkksSecretKey } from './ckksSecretKey.js';

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

/**
 * Applies one link of a CKKS model chain: the encrypted aggregate `bytes` must hash, with its
 * parent, to `version` (the id pins parent and ciphertext, so a tampered link is refused), then it
 * is decrypted and applied to the parent's parameters.
 */
export function applyEncryptedVersion(key: CkksSecretKey, spec: ModelSpec, parentParams: Float32Array, parent: string, version: string, bytes: Uint8Array): Float32Array {
  const sha = createHash('sha256').update(bytes).digest('hex');
  if (encryptedVersionId(spec, parent, sha) !== version) throw new CkksError(`encrypted version ${version} does not match its id (tampered, or not built on ${parent})`);
  return applyCkksAggregate(parentParams, key.decrypt(bytes, parentParams.length + 1, `encrypted version ${version}`));
}

/** The next global model from the base and the decrypted aggregate [sum w_i delta_i, sum w_i]. */
export function applyCkksAggregate(base: Float32Array, sum: Float64Array): Float32Array {
  if (sum.length !== base.length + 1) throw new CkksError(`aggregate has ${sum.length} values; the model needs ${base.length + 1}`);
  // Weights are integers: the CKKS error (~1e-7) is removed by rounding.
  const total = Math.round(sum[base.length]);
  // (No decrypted value goes into an error: the message reaches the coordinator.)
  if (!(total >= 1)) throw new CkksError('the decrypted aggregate\'s weight is not a positive count: it is not a sum of fedmed updates');
  const next = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) next[i] = base[i] + sum[i] / total;
  if (!next.every(Number.isFinite)) throw new CkksError('the decrypted aggregate gives non-finite parameters');
  return next;
}
