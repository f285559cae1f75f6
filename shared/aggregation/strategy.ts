/**
 * The Strategy interface (Flower's shape): how sites are chosen and configured for a round, and
 * how their results become the next global model and the round's metrics.
 *
 * Fit results reach a strategy as an `AggregatedFit`: the example-weighted sum of the deltas
 * (all that secure aggregation reveals), plus — in plain mode, when the rule needs them — each
 * site's update. See federatedStrategy.ts for the implementation and aggregationRule.ts for the
 * algorithms.
 */
import type { FitConfig, SiteMetrics } from '../protocol/messages.js';

export interface AggregatedFit {
  /**
   * Σ_k n_k · Δ_k over the sites that returned an update (float64 to keep precision). Consumed by
   * aggregateFit, which divides it in place into the mean update.
   */
  weightedDeltaSum: Float64Array;
  /** Σ_k n_k. */
  totalExamples: number;
  /** Number of sites in the sum. */
  sites: number;
  /** Each site's update, in site order (plain mode, only when kept: robust rules, determinism). */
  updates?: SiteUpdate[];
}

export interface SiteUpdate {
  site: string;
  delta: Float32Array;
  numExamples: number;
}

export interface SiteEvaluation {
  site: string;
  numExamples: number;
  metrics: SiteMetrics;
}

export interface WeightedMetrics {
  loss: number;
  accuracy: number;
  auc: number | null;
  numExamples: number;
  sites: number;
}

export interface Strategy {
  readonly name: string;
  /** Sites to train in this round (from the available ones) and their training configuration. */
  configureFit(round: number, available: string[]): { sites: string[]; config: FitConfig };
  /** The next global parameters from the current ones and the aggregated updates. */
  aggregateFit(round: number, current: Float32Array, fit: AggregatedFit): Float32Array;
  /** Sites to evaluate the new model on. */
  configureEvaluate(round: number, available: string[]): string[];
  /** Example-weighted metrics over the sites' evaluations. */
  aggregateEvaluate(round: number, results: SiteEvaluation[]): WeightedMetrics;
}

/**
 * Example-weighted means of loss, accuracy and AUC, each over the sites that report it (a site's
 * policy may withhold a metric, or under DP release only a noised accuracy).
 */
export function weightedMetrics(results: { numExamples: number; metrics: SiteMetrics }[]): WeightedMetrics {
  const mean = (key: keyof SiteMetrics): number | null => {
    let n = 0;
    let sum = 0;
    for (const r of results) {
      const v = r.metrics[key];
      if (v === undefined || !Number.isFinite(v)) continue;
      n += r.numExamples;
      sum += r.numExamples * v;
    }
    return n ? sum / n : null;
  };
  return { loss: mean('loss') ?? NaN, accuracy: mean('accuracy') ?? NaN, auc: mean('auc'), numExamples: results.reduce((n, r) => n + r.numExamples, 0), sites: results.length };
}
