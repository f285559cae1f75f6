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
import { SeededRng } from '../../shared/random/seededRng.js';
import { exampleSize, type Dataset } from '../data/dataset.js';
import { activeTrainingBackend } from './trainingBackend.js';

export type OptimizerName = 'sgd' | 'adam';

export interface LocalFitOptions {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: OptimizerName;
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
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  validation?: ClassificationMetrics;
  seconds: number;
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
}

export function checkFitOptions(o: LocalFitOptions): void {
  if (!Number.isInteger(o.epochs) || o.epochs < 1) throw new UsageError(`epochs must be a positive integer, got ${o.epochs}`);
  if (!Number.isInteger(o.batchSize) || o.batchSize < 1) throw new UsageError(`batch size must be a positive integer, got ${o.batchSize}`);
  if (!(o.learningRate > 0)) throw new UsageError(`learning rate must be > 0, got ${o.learningRate}`);
  if (o.optimizer !== 'sgd' && o.optimizer !== 'adam') throw new UsageError(`optimizer must be "sgd" or "adam", got "${o.optimizer}"`);
  if (o.proxMu !== undefined && !(o.proxMu >= 0)) throw new UsageError(`FedProx mu must be >= 0, got ${o.proxMu}`);
}

export async function localFit(spec: ModelSpec, globalParams: Float32Array, data: Dataset, options: LocalFitOptions): Promise<LocalFitResult> {
  checkFitOptions(options);
  const model = new TfjsModel(spec, globalParams);
  try {
    return trainModel(model, data, options);
  } finally {
    model.dispose();
  }
}

/** Trains `model` in place. */
export function trainModel(model: TfjsModel, data: Dataset, options: LocalFitOptions): LocalFitResult {
  checkFitOptions(options);
  const n = data.y.length;
  if (n === 0) throw new UsageError('cannot train on an empty data set');
  const size = exampleSize(data);
  const classes = lastUnits(model);
  if (data.numClasses > classes) throw new UsageError(`the data has ${data.numClasses} classes but model "${model.spec.name}" outputs ${classes}`);
  const optimizer = options.optimizer === 'adam' ? tf.train.adam(options.learningRate) : tf.train.sgd(options.learningRate);
  const mu = options.proxMu ?? 0;
  const anchors = mu > 0 ? model.variables.map((v) => tf.keep(v.clone())) : [];
  const rng = new SeededRng(options.seed ?? 0);
  const batchX = new Float32Array(options.batchSize * size);
  const batchY = new Int32Array(options.batchSize);
  const history: EpochReport[] = [];
  // Model selection on validation data (selectBest).
  let bestParams: Float32Array | null = null;
  let bestEpoch = 0;
  let bestScore = -Infinity;
  let bestLoss = Infinity;
  const started = performance.now();
  try {
    for (let epoch = 1; epoch <= options.epochs; epoch++) {
      const epochStart = performance.now();
      const order = rng.permutation(n);
      let lossSum = 0;
      let correct = 0;
      for (let start = 0; start < n; start += options.batchSize) {
        const b = Math.min(options.batchSize, n - start);
        for (let i = 0; i < b; i++) {
          const j = order[start + i];
          batchX.set(data.x.subarray(j * size, (j + 1) * size), i * size);
          batchY[i] = data.y[j];
        }
        const [lossValue, batchCorrect] = tf.tidy(() => {
          const xs = tf.tensor(batchX.subarray(0, b * size), [b, ...data.exampleShape], 'float32');
          const labels = tf.tensor1d(batchY.subarray(0, b), 'int32');
          const oneHot = tf.oneHot(labels, classes);
          let predicted: tf.Tensor | null = null;
          const loss = optimizer.minimize(() => {
            const logits = model.logits(xs, true);
            predicted = tf.keep(tf.argMax(logits, 1));
            let l = tf.losses.softmaxCrossEntropy(oneHot, logits) as tf.Scalar;
            if (mu > 0) {
              const prox = tf.addN(model.variables.map((v, k) => tf.sum(tf.square(tf.sub(v, anchors[k])))));
              l = tf.add(l, tf.mul(mu / 2, prox));
            }
            return l;
          }, true, model.variables)!;
          const hits = tf.sum(tf.cast(tf.equal(predicted!, labels), 'int32'));
          const result: [number, number] = [loss.dataSync()[0], hits.dataSync()[0]];
          (predicted as tf.Tensor | null)?.dispose();
          return result;
        });
        lossSum += lossValue * b;
        correct += batchCorrect;
      }
      const report: EpochReport = { epoch, trainLoss: lossSum / n, trainAccuracy: correct / n, seconds: (performance.now() - epochStart) / 1000 };
      if (options.validation) {
        const v = evaluateModel(model, options.validation);
        report.validation = v;
        const score = Number.isNaN(v.auc) ? v.accuracy : v.auc;
        if (options.selectBest && (score > bestScore || (score === bestScore && v.loss < bestLoss))) {
          bestParams = model.getParams(bestParams ?? undefined);
          bestEpoch = epoch;
          bestScore = score;
          bestLoss = v.loss;
        }
      }
      history.push(report);
      options.onEpoch?.(report);
    }
  } finally {
    optimizer.dispose();
    for (const a of anchors) a.dispose();
  }
  const seconds = (performance.now() - started) / 1000;
  if (bestParams) model.setParams(bestParams);
  return {
    params: bestParams ?? model.getParams(),
    selectedEpoch: bestParams ? bestEpoch : options.epochs,
    numExamples: n,
    loss: history[history.length - 1].trainLoss,
    history,
    samplesPerSecond: (n * options.epochs) / seconds,
    backend: activeTrainingBackend()?.name ?? tf.getBackend(),
  };
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
