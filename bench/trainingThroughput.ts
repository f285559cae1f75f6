/**
 * Training throughput of cnn-28 (10 classes) at batch 32 on each tfjs backend that loads:
 * samples/s over a fixed number of batches, repeated, median reported.
 */
import { TfjsModel } from '../models/tfjsModel.js';
import { zooModel } from '../models/zoo.js';
import { initParams } from '../shared/model/initParams.js';
import { syntheticImages } from '../edge-client/data/syntheticImages.js';
import { trainModel } from '../edge-client/training/localTrainer.js';
import { setOnnxruntimeConvKernelsEnabled, setOnnxruntimeConvThreads } from '../edge-client/training/onnxruntimeConvKernels.js';
import { initTrainingBackend, type TrainingBackendName } from '../edge-client/training/trainingBackend.js';
import { median, round } from './stats.js';

/** A backend, and for wasm which kernels run the convolutions and dense layers. */
export interface TrainingBenchConfig {
  backend: TrainingBackendName;
  /** wasm only: onnxruntime (MLAS) kernels with this many threads, or 0 for tfjs' XNNPACK kernels. */
  ortThreads?: number;
}

export interface TrainingBenchResult {
  backend: TrainingBackendName;
  kernels?: string;
  available: boolean;
  reason?: string;
  samplesPerSecond?: number;
  runs?: number[];
  samplesPerRun?: number;
}

export async function benchTraining(configs: TrainingBenchConfig[], options: { repeats: number; batches: Record<string, number> }): Promise<TrainingBenchResult[]> {
  const spec = zooModel('cnn-28', { numClasses: 10 });
  const params = initParams(spec, 1);
  const results: TrainingBenchResult[] = [];
  for (const { backend, ortThreads } of configs) {
    let kernels: string | undefined;
    try {
      const info = await initTrainingBackend(backend);
      kernels = info.convKernels;
      if (backend === 'wasm' && ortThreads !== undefined) {
        const useOrt = ortThreads > 0 && info.convKernels.startsWith('onnxruntime');
        setOnnxruntimeConvKernelsEnabled(useOrt);
        if (useOrt) setOnnxruntimeConvThreads(ortThreads);
        kernels = useOrt ? `onnxruntime-cpu (${ortThreads} thread${ortThreads === 1 ? '' : 's'})` : 'xnnpack-wasm (tfjs, + fedmed gradient kernels)';
      }
    } catch (err) {
      results.push({ backend, available: false, reason: (err as Error).message });
      continue;
    }
    const batches = options.batches[backend] ?? options.batches.default;
    const data = syntheticImages({ n: batches * 32, numClasses: 10, seed: 2 });
    const model = new TfjsModel(spec, params);
    // Warm-up: kernel setup, XNNPACK operator creation, JIT.
    trainModel(model, { ...data, x: data.x.subarray(0, 32 * 784), y: data.y.subarray(0, 32) }, { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'sgd' });
    const runs: number[] = [];
    for (let r = 0; r < options.repeats; r++) {
      const res = trainModel(model, data, { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'sgd', seed: r });
      runs.push(round(res.samplesPerSecond, 1));
    }
    model.dispose();
    setOnnxruntimeConvKernelsEnabled(true);
    results.push({ backend, kernels, available: true, samplesPerSecond: round(median(runs), 1), runs, samplesPerRun: data.y.length });
  }
  return results;
}
