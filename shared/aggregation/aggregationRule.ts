/**
 * An aggregation rule: how the sites' trained models become the next global model. This is
 * the part of a strategy that differs between FedAvg, the server optimisers and the robust
 * aggregators; site sampling and evaluation are shared (see federatedStrategy.ts).
 *
 * Two entry points, equal in exact arithmetic for the mean-based rules:
 * - `aggregateFit(current, results)`: the library API, from each site's parameters.
 * - `applyMeanDelta(current, meanDelta)`: what the coordinator calls when it only holds the
 *   example-weighted sum of the updates (always under secure aggregation, and in plain mode for
 *   rules that do not need individual updates). Robust rules do not have it.
 */
import { FedmedError } from '../errors.js';
import type { FitConfig } from '../protocol/messages.js';

/** One site's result: its locally trained parameters and how many examples it trained on. */
export interface FitResult {
  params: Float32Array;
  numExamples: number;
}

/** A rule's optimiser state (moments, momentum), persisted with the version it belongs to. */
export type RuleState = Record<string, Float32Array>;

export interface AggregationRule {
  readonly name: string;
  /** True for rules that need every site's update (median, trimmed mean, Krum, Bulyan). */
  readonly needsIndividualUpdates: boolean;
  /** The next global parameters from the sites' parameters and example counts. */
  aggregateFit(current: Float32Array, results: FitResult[]): Float32Array;
  /** Mean-based rules: the next parameters from Σ n_k Δ_k / Σ n_k. */
  applyMeanDelta?(current: Float32Array, meanDelta: Float64Array | Float32Array): Float32Array;
  /** Local training settings the rule imposes on the sites (FedProx's μ). */
  fitConfig?(): Partial<FitConfig>;
  /** Server optimiser state, to persist across coordinator restarts (empty for stateless rules). */
  exportState(): RuleState;
  importState(state: RuleState): void;
}

/** Thrown for a rule that cannot aggregate what it was given (too few sites, bad options). */
export class AggregationError extends FedmedError {
  constructor(message: string) {
    super('AGGREGATION', message);
  }
}

/** Checks a result list: non-empty, every vector of the model's length, finite counts. */
export function checkResults(rule: string, current: Float32Array, results: FitResult[]): void {
  if (results.length === 0) throw new AggregationError(`${rule}: no results to aggregate`);
  results.forEach((r, i) => {
    if (r.params.length !== current.length) throw new AggregationError(`${rule}: result ${i} has ${r.params.length} parameters, the model has ${current.length}`);
    if (!(Number.isFinite(r.numExamples) && r.numExamples >= 0)) throw new AggregationError(`${rule}: result ${i} has an invalid example count ${r.numExamples}`);
  });
}

/**
 * Σ n_k (w_k − w) / Σ n_k in float64: the example-weighted mean update (Flower's `aggregate()`
 * minus the current parameters). Sums in the order given, so the same inputs give the same bits.
 */
export function weightedMeanDelta(current: Float32Array, results: FitResult[]): Float64Array {
  const total = results.reduce((a, r) => a + r.numExamples, 0);
  if (!(total > 0)) throw new AggregationError('the results have no training examples in total');
  const mean = new Float64Array(current.length);
  for (const r of results) {
    const w = r.numExamples;
    const p = r.params;
    for (let i = 0; i < mean.length; i++) mean[i] += w * (p[i] - current[i]);
  }
  for (let i = 0; i < mean.length; i++) mean[i] /= total;
  return mean;
}

/** Base of the mean-based rules: aggregateFit is applyMeanDelta of the weighted mean update. */
export abstract class MeanBasedRule implements AggregationRule {
  abstract readonly name: string;
  readonly needsIndividualUpdates = false;

  aggregateFit(current: Float32Array, results: FitResult[]): Float32Array {
    checkResults(this.name, current, results);
    return this.applyMeanDelta(current, weightedMeanDelta(current, results));
  }

  abstract applyMeanDelta(current: Float32Array, meanDelta: Float64Array | Float32Array): Float32Array;

  exportState(): RuleState {
    return {};
  }

  importState(_state: RuleState): void {}
}
