/**
 * Training throughput of cnn-28 (10 classes) at batch 32 on each tfjs backend that loads:
 * samples/s over a fixed number of batches, repeated, median reported.
 */
import { TfjsModel } from '../models/tfjsModel.js';
import { zooModel } from '../models/zoo.js';
import { initParams } from '../shared/model/initParams.js';
import { syntheticImages } from '../edge-client/data/syntheticImages.js';
import { dataParallelFit } from '../edge-client/training/dataParallelTrainer.js';
import { trainModel } from '../edge-client/training/localTrainer.js';
import { setOnnxruntimeConvKernelsEnabled, setOnnxruntimeConvThreads } from '../edge-client/training/onnxruntimeConvKernels.js';
import { initTrainingBackend, type TrainingBackendName } from '../edge-client/training/trainingBackend.js';
import { median, round } from './stats.js';

/** A backend, and for wasm which kernels run the convolutions and dense layers. */
export interface TrainingBenchConfig {
  backend: TrainingBackendName;
  /** wasm only: onnxruntime (MLAS) kernels with this many threads, or 0 for tfjs' XNNPACK kernels. */
  ortThreads?: number;
  /** wasm only: data-parallel worker threads (each with 1-thread onnxruntime kernels). */
  workers?: number;
}

export interface TrainingBenchResult {
  backend: TrainingBackendName;
  kernels?: string;
  workers?: number;
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
  for (const { backend, ortThreads, workers } of configs) {
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
    if (workers && workers > 1) {
      // One extra epoch first as the warm-up (worker start, JIT, kernel graphs), then one epoch per run.
      const runs: number[] = [];
      await dataParallelFit(spec, params, data, {
        epochs: options.repeats + 1,
        batchSize: 32,
        learningRate: 0.01,
        optimizer: 'sgd',
        workers,
        backend,
        onEpoch: (r) => {
          if (r.epoch > 1) runs.push(round(data.y.length / r.seconds, 1));
        },
      });
      results.push({ backend, kernels: `onnxruntime-cpu (1 thread per worker)`, workers, available: true, samplesPerSecond: round(median(runs), 1), runs, samplesPerRun: data.y.length });
      continue;
    }
    const model = new TfjsModel(spec, params);
    // Warm-up: kernel setup, XNNPACK operator creation, JIT.
    await trainModel(model, { ...data, x: data.x.subarray(0, 32 * 784), y: data.y.subarray(0, 32) }, { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'sgd' });
    const runs: number[] = [];
    for (let r = 0; r < options.repeats; r++) {
      const res = await trainModel(model, data, { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'sgd', seed: r });
      runs.push(round(res.samplesPerSecond, 1));
    }
    model.dispose();
    setOnnxruntimeConvKernelsEnabled(true);
    results.push({ backend, kernels, available: true, samplesPerSecond: round(median(runs), 1), runs, samplesPerRun: data.y.length });
  }
  return results;
}
