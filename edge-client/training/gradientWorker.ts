/**
 * Worker thread of the data-parallel trainer (dataParallelTrainer.ts). It holds a replica of
 * the model and its optimizer; for each step it computes the gradient of its shard of the
 * batch into shared memory, then applies the averaged gradient that the main thread wrote.
 * All replicas apply the same averaged gradients with the same optimizer, so they stay equal.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { TfjsModel } from '../../models/tfjsModel.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { ImageAugmenter, type AugmentOptions } from './augmentation.js';
import { gatherBatch } from './localTrainer.js';
import { initTrainingBackend, type TrainingBackendName } from './trainingBackend.js';
import { TrainingStep, type StepOptions } from './trainingStep.js';

export interface GradientWorkerInit {
  spec: ModelSpec;
  params: Float32Array;
  backend: TrainingBackendName;
  x: SharedArrayBuffer;
  y: SharedArrayBuffer;
  exampleShape: number[];
  step: StepOptions;
  /** This worker's gradient output (layout order). */
  grad: SharedArrayBuffer;
  /** The averaged gradients written by the main thread (two, used alternately by step). */
  avg: SharedArrayBuffer[];
  /** Where worker 0 writes its parameters on request. */
  out: SharedArrayBuffer;
  maxShard: number;
  augment?: AugmentOptions;
  /** Seed of this worker's augmentation stream. */
  augmentSeed: number;
}

export type WorkerRequest =
  /** applyAvg: index of the averaged gradient to apply before this step, or -1. */
  | { type: 'step'; indices: Int32Array; batchSize: number; applyAvg: number }
  | { type: 'apply'; avg: number }
  | { type: 'params' }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'ready'; backend: string; convKernels: string }
  | { type: 'grads'; loss: number; correct: number; count: number }
  | { type: 'applied' }
  | { type: 'params' }
  | { type: 'error'; message: string };

async function main(): Promise<void> {
  const init = workerData as GradientWorkerInit;
  const port = parentPort!;
  const info = await initTrainingBackend(init.backend, { threads: 1, log: () => {} });
  const model = new TfjsModel(init.spec, init.params);
  const step = new TrainingStep(model, init.step);
  const data = { x: new Float32Array(init.x), y: new Int32Array(init.y), exampleShape: init.exampleShape };
  const size = init.exampleShape.reduce((a, b) => a * b, 1);
  const grad = new Float32Array(init.grad);
  const avg = init.avg.map((b) => new Float32Array(b));
  const out = new Float32Array(init.out);
  const batchX = new Float32Array(init.maxShard * size);
  const batchY = new Int32Array(init.maxShard);
  const augmenter = init.augment ? new ImageAugmenter(init.exampleShape, init.augment, init.augmentSeed) : null;
  port.postMessage({ type: 'ready', backend: info.name, convKernels: info.convKernels } satisfies WorkerReply);
  port.on('message', (req: WorkerRequest) => {
    try {
      switch (req.type) {
        case 'step': {
          if (req.applyAvg >= 0) step.applyFlatGradients(avg[req.applyAvg]);
          const b = req.indices.length;
          if (b === 0) {
            grad.fill(0);
            port.postMessage({ type: 'grads', loss: 0, correct: 0, count: 0 } satisfies WorkerReply);
            return;
          }
          gatherBatch(data, req.indices, batchX, batchY);
          augmenter?.apply(batchX, b);
          const r = step.gradients(batchX.subarray(0, b * size), batchY.subarray(0, b), init.exampleShape, b / req.batchSize, grad);
          port.postMessage({ type: 'grads', loss: r.loss, correct: r.correct, count: b } satisfies WorkerReply);
          return;
        }
        case 'apply':
          step.applyFlatGradients(avg[req.avg]);
          port.postMessage({ type: 'applied' } satisfies WorkerReply);
          return;
        case 'params':
          model.getParams(out);
          port.postMessage({ type: 'params' } satisfies WorkerReply);
          return;
        case 'close':
          step.dispose();
          model.dispose();
          port.close();
          return;
      }
    } catch (err) {
      port.postMessage({ type: 'error', message: (err as Error).message } satisfies WorkerReply);
    }
  });
}

main().catch((err: unknown) => {
  parentPort?.postMessage({ type: 'error', message: (err as Error).message } satisfies WorkerReply);
});
