/**
 * OTA update size: consecutive FedAvg versions of cnn-28 with real local training between them
 * (3 sites, 1 local epoch each, the experiments' default Adam lr 0.001 and also SGD lr 0.01),
 * each successor encoded as a lossless update against its predecessor. Reports update bytes as
 * a fraction of the raw float32 model for each transform/codec, and encode/decode times.
 * Uses BreastMNIST from ../shared/data when present, else synthetic 28×28 images.
 */
import { existsSync } from 'node:fs';
import { zooModel } from '../models/zoo.js';
import { stratifiedSplit, type Dataset } from '../edge-client/data/dataset.js';
import { loadMedmnistNpz } from '../edge-client/data/medmnistLoader.js';
import { syntheticImages } from '../edge-client/data/syntheticImages.js';
import { localFit, type OptimizerName } from '../edge-client/training/localTrainer.js';
import { initTrainingBackend } from '../edge-client/training/trainingBackend.js';
import { initParams } from '../shared/model/initParams.js';
import { decodeModelUpdate, encodeModelUpdate, readUpdateHeader, type UpdateCodec, type UpdateTransform } from '../shared/model/modelUpdate.js';
import { median, round } from './stats.js';

const BREAST = new URL('../../../shared/data/medmnist_breast/breastmnist.npz', import.meta.url).pathname;

export interface OtaBenchOptions {
  rounds: number;
  sites: number;
}

export async function benchOta(o: OtaBenchOptions): Promise<Record<string, unknown>> {
  await initTrainingBackend('wasm');
  const data: Dataset = existsSync(BREAST) ? loadMedmnistNpz(BREAST).train : syntheticImages({ n: 600, seed: 1 });
  const spec = zooModel('cnn-28', { numClasses: data.numClasses });
  const sites = stratifiedSplit(data, Array(o.sites).fill(1 / o.sites), 1);
  const out: Record<string, unknown> = { dataset: existsSync(BREAST) ? 'breastmnist (train split)' : 'synthetic 28x28', parameters: initParams(spec, 1).length, sites: o.sites, rounds: o.rounds };
  for (const [optimizer, learningRate] of [['adam', 0.001], ['sgd', 0.01]] as [OptimizerName, number][]) {
    let g = initParams(spec, 1);
    const versions = [g];
    for (let r = 0; r < o.rounds; r++) {
      const next = new Float32Array(g.length);
      let n = 0;
      for (const s of sites) {
        const res = await localFit(spec, g, s, { epochs: 1, batchSize: 32, learningRate, optimizer, seed: r });
        for (let i = 0; i < g.length; i++) next[i] += res.params[i] * res.numExamples;
        n += res.numExamples;
      }
      for (let i = 0; i < g.length; i++) next[i] /= n;
      versions.push((g = next));
    }
    const raw = g.length * 4;
    const rows: Record<string, unknown>[] = [];
    for (const [transform, codec] of [['sub', 'deflate'], ['xor', 'deflate'], ['sub', 'br'], ['xor', 'br']] as [UpdateTransform, UpdateCodec][]) {
      const fractions: number[] = [];
      const encodeMs: number[] = [];
      const decodeMs: number[] = [];
      for (let r = 1; r < versions.length; r++) {
        const t0 = performance.now();
        const u = encodeModelUpdate(versions[r], versions[r - 1], { transform, codec, kind: 'delta' });
        const t1 = performance.now();
        decodeModelUpdate(u, versions[r - 1]);
        decodeMs.push(performance.now() - t1);
        encodeMs.push(t1 - t0);
        fractions.push(u.length / raw);
      }
      rows.push({ transform, codec, fractionOfFullPerRound: fractions.map((f) => round(f)), medianFraction: round(median(fractions)), maxFraction: round(Math.max(...fractions)), medianEncodeMs: round(median(encodeMs), 1), medianDecodeMs: round(median(decodeMs), 1) });
    }
    const full = encodeModelUpdate(g, null, { codec: 'deflate' });
    out[`${optimizer}_lr${learningRate}`] = { deltas: rows, fullModelCompressedFraction: round(full.length / raw), fullKind: readUpdateHeader(full).header.kind };
  }
  return out;
}
