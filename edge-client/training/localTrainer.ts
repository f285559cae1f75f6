/**
 * Local training on the edge: spec + global params + local data -> new params and metrics.
 * Mini-batch SGD or Adam over softmax cross-entropy, with an optional FedProx proximal term
 * (mu/2 * ||w - w_global||^2) that keeps heterogeneous sites close to the global model.
 */
import * as tf from '@tensorflow/tfjs';
import { TfjsModel } from '../../models/tfjsModel.js';
import { UsageError } from '../../shared/errors.js';
import { numClassesOf, type ModelSpec } from '../../shared/model/modelSpec.js';
import { classificationMetrics, type ClassificationMetrics } from '../../shared/metrics/classificationMetrics.js';
import { exampleSize, type Dataset } from '../data/dataset.js';
import { ImageAugmenter, type AugmentOptions } from './augmentation.js';
import { runEpochs, type EpochLoopResult, type EpochReport } from './epochLoop.js';
import { activeTrainingBackend } from './trainingBackend.js';
import { TrainingStep, type OptimizerName } from './trainingStep.js';

export type { EpochReport } from './epochLoop.js';
export type { OptimizerName } from './trainingStep.js';

export interface LocalFitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: OptimizerName;
  /** Exactly this many mini-batches instead of `epochs` passes (federated rounds: FitConfig.steps). */
  steps?: number;
  /** FedProx proximal coefficient mu; 0 or absent = plain local training. */
  proxMu?: number;
  /** Seed for the shuffling order (recorded by callers). */
  seed?: number;
  /** Evaluated after every epoch when given (e.g. the site's validation split). */
  validation?: Dataset;
  /**
   * With `validation`: return the parameters of the epoch with the best validation AUC (ties:
   * lower loss) instead of the last epoch's, i.e. model selection on validation data.
   */
  selectBest?: boolean;
  onEpoch?: (report: EpochReport) => void;
  /**
   * Worker threads for data-parallel training (wasm backend; default 1 = this thread). Each
   * batch is split across the workers and their gradients averaged: same result, more cores.
   */
  workers?: number;
  /** Image augmentation (random flips/shifts) applied to every training batch. */
  augment?: AugmentOptions;
}

export interface LocalFitResult {
  params: Float32Array;
  numExamples: number;
  /** Mean training loss of the last epoch. */
  loss: number;
  /** Epoch whose parameters are returned (the last one unless selectBest chose another). */
  selectedEpoch: number;
  history: EpochReport[];
  /** Training throughput over all epochs (examples processed per second). */
  samplesPerSecond: number;
  backend: string;
  /** Threads that trained: 1, or the data-parallel worker count (wasm backend only). */
  workers: number;
}

export function checkFitOptions(o: LocalFitOptions): void {
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new UsageError(`epochs must be a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new UsageError(`batch size must be a positive integer, got ${o.batchSize}`);
  if (!(o.learningRate > 0)) throw new UsageError(`learning rate must be > 0, got ${o.learningRate}`);
  if (o.optimizer !== 'sgd' && o.optimizer !== 'adam') throw new UsageError(`optimizer must be "sgd" or "adam", got "${o.optimizer}"`);
  if (o.steps !== undefined && !(Number.isInteger(o.steps) && o.steps >= 1)) throw new UsageError(`steps must be a positive integer, got ${o.steps}`);
  if (o.proxMu !== undefined && !(o.proxMu >= 0)) throw new UsageError(`FedProx mu must be >= 0, got ${o.proxMu}`);
  if (o.workers !== undefined && !(Number.isInteger(o.workers) && o.workers >= 1 && o.workers <= 64)) throw new UsageError(`workers must be an integer from 1 to 64, got ${o.workers}`);
}

export async function localFit(spec: ModelSpec, globalParams: Float32Array, data: Dataset, options: LocalFitOptions): Promise<LocalFitResult> {
  checkFitOptions(options);
  const backend = activeTrainingBackend();
  if ((options.workers ?? 1) > 1 && backend?.name !== 'wasm') {
    // Native TensorFlow backends use every core by themselves; say so instead of ignoring the request.
    console.warn(`training: --workers applies to the wasm backend; "${backend?.name ?? tf.getBackend()}" trains on one process`);
  }
  if ((options.workers ?? 1) > 1 && backend?.name === 'wasm') {
    // Imported lazily: worker threads are only needed for this path.
    const { dataParallelFit } = await import('./dataParallelTrainer.js');
    return dataParallelFit(spec, globalParams, data, { ...options, workers: options.workers!, backend: backend.name });
  }
  const model = new TfjsModel(spec, globalParams);
  try {
    return await trainModel(model, data, options);
  } finally {
    model.dispose();
  }
}

/** Trains `model` in place on this thread. */
export async function trainModel(model: TfjsModel, data: Dataset, options: LocalFitOptions): Promise<LocalFitResult> {
  checkFitOptions(options);
  checkData(model.spec, data);
  const n = data.y.length;
  const size = exampleSize(data);
  const step = new TrainingStep(model, options);
  const batchX = new Float32Array(options.batchSize * size);
  const batchY = new Int32Array(options.batchSize);
  const validation = options.validation;
  const augmenter = options.augment ? new ImageAugmenter(data.exampleShape, options.augment, (options.seed ?? 0) + 1) : null;
  let loop: EpochLoopResult;
  try {
    loop = await runEpochs(n, options, {
      runBatch: (indices) => {
        gatherBatch(data, indices, batchX, batchY);
        augmenter?.apply(batchX, indices.length);
        return step.minimize(batchX.subarray(0, indices.length * size), batchY.subarray(0, indices.length), data.exampleShape);
      },
      evaluate: validation ? () => evaluateModel(model, validation) : undefined,
      snapshot: (reuse) => model.getParams(reuse),
    });
  } finally {
    step.dispose();
  }
  if (loop.selected) model.setParams(loop.selected.params);
  return fitResult(loop, loop.selected?.params ?? model.getParams(), n, options, activeTrainingBackend()?.name ?? tf.getBackend());
}

/** Assembles a LocalFitResult from the epoch loop's outcome. */
export function fitResult(loop: EpochLoopResult, params: Float32Array, n: number, options: LocalFitOptions, backend: string, workers = 1): LocalFitResult {
  return {
    workers,
    params,
    selectedEpoch: loop.selected?.epoch ?? loop.reports.length,
    numExamples: n,
    loss: loop.reports[loop.reports.length - 1].trainLoss,
    history: loop.reports,
    samplesPerSecond: (options.steps !== undefined ? Math.min(options.steps * options.batchSize, n * loop.reports.length) : n * options.epochs) / loop.seconds,
    backend,
  };
}

/** Copies the examples at `indices` into the batch buffers. */
export function gatherBatch(data: Pick<Dataset, 'x' | 'y' | 'exampleShape'>, indices: ArrayLike<number>, batchX: Float32Array, batchY: Int32Array): void {
  const size = exampleSize(data);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    batchX.set(data.x.subarray(j * size, (j + 1) * size), i * size);
    batchY[i] = data.y[j];
  }
}

/** Throws UsageError for an empty data set or one with more classes than the model outputs. */
export function checkData(spec: ModelSpec, data: Dataset): void {
  if (data.y.length === 0) throw new UsageError('cannot train on an empty data set');
  const classes = numClassesOf(spec);
  if (data.numClasses > classes) throw new UsageError(`the data has ${data.numClasses} classes but model "${spec.name}" outputs ${classes}`);
}

/** Loss, accuracy and AUC of `model` on `data`, predicted in batches. */
export function evaluateModel(model: TfjsModel, data: Dataset, batchSize = 256): ClassificationMetrics {
  const probs = predictProbabilities(model, data, batchSize);
  return classificationMetrics(probs, data.y, probs.length / Math.max(data.y.length, 1));
}

/** Class probabilities for every example, row-major [n, classes]. */
export function predictProbabilities(model: TfjsModel, data: Dataset, batchSize = 256): Float32Array {
  const n = data.y.length;
  const size = exampleSize(data);
  const classes = lastUnits(model);
  const out = new Float32Array(n * classes);
  for (let start = 0; start < n; start += batchSize) {
    const b = Math.min(batchSize, n - start);
    const p = tf.tidy(() => model.probabilities(tf.tensor(data.x.subarray(start * size, (start + b) * size), [b, ...data.exampleShape], 'float32')));
    out.set(p.dataSync() as Float32Array, start * classes);
    p.dispose();
  }
  return out;
}

function lastUnits(model: TfjsModel): number {
  return numClassesOf(model.spec);
}
