/**
 * Per-epoch bookkeeping shared by the single-thread and the data-parallel trainers: the epoch
 * reports, and model selection on validation data (keep the parameters of the epoch with the
 * best validation AUC; ties: lower loss).
 */
import type { ClassificationMetrics } from '../../shared/metrics/classificationMetrics.js';

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  validation?: ClassificationMetrics;
  seconds: number;
}

export class EpochHistory {
  readonly reports: EpochReport[] = [];
  private bestParams: Float32Array | null = null;
  private bestEpoch = 0;
  private bestScore = -Infinity;
  private bestLoss = Infinity;

  constructor(private readonly selectBest: boolean) {}

  /**
   * Records an epoch. `validation` is the model's metrics on validation data (if any);
   * `snapshot` copies the current parameters and is called only when this epoch is the best so far.
   */
  record(report: EpochReport, snapshot: (reuse?: Float32Array) => Float32Array): void {
    const v = report.validation;
    if (v && this.selectBest) {
      const score = Number.isNaN(v.auc) ? v.accuracy : v.auc;
      if (score > this.bestScore || (score === this.bestScore && v.loss < this.bestLoss)) {
        this.bestParams = snapshot(this.bestParams ?? undefined);
        this.bestEpoch = report.epoch;
        this.bestScore = score;
        this.bestLoss = v.loss;
      }
    }
    this.reports.push(report);
  }

  /** The selected parameters and epoch, or null when selection is off or had no validation. */
  selected(): { params: Float32Array; epoch: number } | null {
    return this.bestParams ? { params: this.bestParams, epoch: this.bestEpoch } : null;
  }
}
