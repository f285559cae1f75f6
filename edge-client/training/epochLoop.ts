/**
 * The epoch loop shared by the single-thread and the data-parallel trainers: seeded shuffling,
 * mini-batches, per-epoch reports, and model selection on validation data (keep the parameters
 * of the epoch with the best validation AUC; ties: lower loss). How a batch is run, how the
 * model is evaluated and how its parameters are read is up to the caller.
 */
import type { ClassificationMetrics } from '../../shared/metrics/classificationMetrics.js';
import { SeededRng } from '../../shared/random/seededRng.js';
import type { BatchOutcome } from './trainingStep.js';

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  validation?: ClassificationMetrics;
  seconds: number;
}

export interface EpochLoopOptions {
  epochs: number;
  /** Exactly this many mini-batches instead of `epochs` passes (each pass reshuffles). */
  steps?: number;
  batchSize: number;
  seed?: number;
  selectBest?: boolean;
  onEpoch?: (report: EpochReport) => void;
}

export interface EpochLoopHooks {
  /** Trains on one mini-batch: the examples at `indices`. */
  runBatch(indices: Int32Array): BatchOutcome | Promise<BatchOutcome>;
  /** Validation metrics of the current model; absent = no validation. */
  evaluate?: () => ClassificationMetrics | Promise<ClassificationMetrics>;
  /** A copy of the current parameters (into `reuse` when given). */
  snapshot(reuse?: Float32Array): Float32Array | Promise<Float32Array>;
}

export interface EpochLoopResult {
  reports: EpochReport[];
  /** Parameters and epoch chosen on validation data, or null (selection off or no validation). */
  selected: { params: Float32Array; epoch: number } | null;
  seconds: number;
}

export async function runEpochs(n: number, options: EpochLoopOptions, hooks: EpochLoopHooks): Promise<EpochLoopResult> {
  const rng = new SeededRng(options.seed ?? 0);
  const reports: EpochReport[] = [];
  type Best = { params: Float32Array; epoch: number; score: number; loss: number };
  let best = null as Best | null;
  const started = performance.now();
  let stepsLeft = options.steps ?? Infinity;
  const passes = options.steps !== undefined ? Math.ceil((options.steps * options.batchSize) / n) : options.epochs;
  for (let epoch = 1; epoch <= passes && stepsLeft > 0; epoch++) {
    const epochStart = performance.now();
    const order = rng.permutation(n);
    let lossSum = 0;
    let correct = 0;
    let seen = 0;
    for (let start = 0; start < n && stepsLeft > 0; start += options.batchSize, stepsLeft--) {
      const indices = order.subarray(start, Math.min(start + options.batchSize, n));
      const r = await hooks.runBatch(indices);
      lossSum += r.loss * indices.length;
      correct += r.correct;
      seen += indices.length;
    }
    const report: EpochReport = { epoch, trainLoss: lossSum / seen, trainAccuracy: correct / seen, seconds: (performance.now() - epochStart) / 1000 };
    if (hooks.evaluate) {
      const v = await hooks.evaluate();
      report.validation = v;
      const score = Number.isNaN(v.auc) ? v.accuracy : v.auc;
      if (options.selectBest && (!best || score > best.score || (score === best.score && v.loss < best.loss))) {
        best = { params: await hooks.snapshot(best?.params), epoch, score, loss: v.loss };
      }
    }
    reports.push(report);
    options.onEpoch?.(report);
  }
  return { reports, selected: best ? { params: best.params, epoch: best.epoch } : null, seconds: (performance.now() - started) / 1000 };
}
