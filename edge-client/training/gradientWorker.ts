/**
 * Worker thread of the data-parallel trainer (dataParallelTrainer.ts). It lives across fits
 * (`init` sets up each one) and holds a replica of the model and its optimizer. For each step it
 * computes the gradient of its shard of the batch into shared memory, then applies the averaged
 * gradient the main thread wrote. All replicas apply the same averaged gradients with the same
 * optimizer, so they stay equal.
 */
import { parentPort } from 'node:worker_threads';
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
  /** (Re)initialise for a fit: model, optimizer, data and shared buffers. */
  | { type: 'init'; init: GradientWorkerInit }
  /** applyAvg: index of the averaged gradient to apply before this step, or -1. */
  | { type: 'step'; indices: Int32Array; batchSize: number; applyAvg: number }
  | { type: 'apply'; avg: number }
  | { type: 'params' }
  | { type: 'close' };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'grads'; loss: number; correct: number; count: number }
  | { type: 'applied' }
  | { type: 'params' }
  | { type: 'error'; message: string };

interface FitState {
  init: GradientWorkerInit;
  model: TfjsModel;
  step: TrainingStep;
  data: { x: Float32Array; y: Int32Array; exampleShape: number[] };
  size: number;
  grad: Float32Array;
  avg: Float32Array[];
  out: Float32Array;
  batchX: Float32Array;
  batchY: Int32Array;
  augmenter: ImageAugmenter | null;
}

function setUp(init: GradientWorkerInit): FitState {
  const model = new TfjsModel(init.spec, init.params);
  return {
    init,
    model,
    step: new TrainingStep(model, init.step),
    data: { x: new Float32Array(init.x), y: new Int32Array(init.y), exampleShape: init.exampleShape },
    size: init.exampleShape.reduce((a, b) => a * b, 1),
    grad: new Float32Array(init.grad),
    avg: init.avg.map((b) => new Float32Array(b)),
    out: new Float32Array(init.out),
    batchX: new Float32Array(init.maxShard * init.exampleShape.reduce((a, b) => a * b, 1)),
    batchY: new Int32Array(init.maxShard),
    augmenter: init.augment ? new ImageAugmenter(init.exampleShape, init.augment, init.augmentSeed) : null,
  };
}

function tearDown(s: FitState | null): void {
  s?.step.dispose();
  s?.model.dispose();
}

const port = parentPort!;
let state: FitState | null = null;
let backendReady: Promise<unknown> | null = null;

port.on('message', async (req: WorkerRequest) => {
  try {
    if (req.type === 'init') {
      backendReady ??= initTrainingBackend(req.init.backend, { threads: 1, log: () => {} });
      await backendReady;
      tearDown(state);
      state = setUp(req.init);
      port.postMessage({ type: 'ready' } satisfies WorkerReply);
      return;
    }
    if (req.type === 'close') {
      tearDown(state);
      state = null;
      port.close();
      return;
    }
    const s = state;
    if (!s) throw new Error(`"${req.type}" before "init"`);
    switch (req.type) {
      case 'step': {
        if (req.applyAvg >= 0) s.step.applyFlatGradients(s.avg[req.applyAvg]);
        const b = req.indices.length;
        if (b === 0) {
          s.grad.fill(0);
          port.postMessage({ type: 'grads', loss: 0, correct: 0, count: 0 } satisfies WorkerReply);
          return;
        }
        gatherBatch(s.data, req.indices, s.batchX, s.batchY);
        s.augmenter?.apply(s.batchX, b);
        const r = s.step.gradients(s.batchX.subarray(0, b * s.size), s.batchY.subarray(0, b), s.init.exampleShape, b / req.batchSize, s.grad);
        port.postMessage({ type: 'grads', loss: r.loss, correct: r.correct, count: b } satisfies WorkerReply);
        return;
      }
      case 'apply':
        s.step.applyFlatGradients(s.avg[req.avg]);
        port.postMessage({ type: 'applied' } satisfies WorkerReply);
        return;
      case 'params':
        s.model.getParams(s.out);
        port.postMessage({ type: 'params' } satisfies WorkerReply);
        return;
    }
  } catch (err) {
    port.postMessage({ type: 'error', message: (err as Error).message } satisfies WorkerReply);
  }
});
