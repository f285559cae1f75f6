/**
 * Inference on the same cnn-28 model and weights: onnxruntime-node (CPU provider) vs tfjs
 * (wasm): p50/p99 latency at batch 1 and throughput at batch 64.
 */
import * as tf from '@tensorflow/tfjs';
import { buildOnnxModel } from '../models/onnxModel.js';
import { TfjsModel } from '../models/tfjsModel.js';
import { zooModel } from '../models/zoo.js';
import { initParams } from '../shared/model/initParams.js';
import { OnnxInferenceSession } from '../edge-client/inference/onnxInferenceSession.js';
import { initTrainingBackend } from '../edge-client/training/trainingBackend.js';
import { median, percentile, round } from './stats.js';

export interface InferenceBenchResult {
  engine: string;
  batch1: { p50Ms: number; p99Ms: number; calls: number };
  batch64: { samplesPerSecond: number; runs: number[] };
}

type Runner = (x: Float32Array, batch: number) => Promise<void>;

async function measure(engine: string, run: Runner, calls: number, repeats: number): Promise<InferenceBenchResult> {
  const one = new Float32Array(784).fill(0.3);
  const many = Float32Array.from({ length: 64 * 784 }, (_, i) => (i % 97) / 97);
  for (let i = 0; i < 50; i++) await run(one, 1);
  const lat: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now();
    await run(one, 1);
    lat.push(performance.now() - t0);
  }
  for (let i = 0; i < 5; i++) await run(many, 64);
  const runs: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const n = 40;
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await run(many, 64);
    runs.push(round((n * 64) / ((performance.now() - t0) / 1000), 0));
  }
  return { engine, batch1: { p50Ms: round(percentile(lat, 50), 4), p99Ms: round(percentile(lat, 99), 4), calls }, batch64: { samplesPerSecond: median(runs), runs } };
}

export async function benchInference(options: { calls: number; repeats: number }): Promise<InferenceBenchResult[]> {
  const spec = zooModel('cnn-28', { numClasses: 10 });
  const params = initParams(spec, 1);
  const session = await OnnxInferenceSession.create(buildOnnxModel(spec, params), { providers: ['cpu'] });
  const ortResult = await measure(`onnxruntime-node (${session.provider})`, async (x, b) => void (await session.run(x, b)), options.calls, options.repeats);
  await session.release();

  await initTrainingBackend('wasm');
  const model = new TfjsModel(spec, params);
  const tfjsResult = await measure('tfjs (wasm)', async (x, b) => {
    const p = tf.tidy(() => model.probabilities(tf.tensor(x, [b, 28, 28, 1])));
    await p.data();
    p.dispose();
  }, options.calls, options.repeats);
  model.dispose();
  return [ortResult, tfjsResult];
}
