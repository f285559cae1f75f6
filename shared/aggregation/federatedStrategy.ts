/**
 * The round engine's Strategy (Flower's shape): seeded site sampling and evaluation shared by
 * every algorithm, plus the experiment's aggregation rule for turning fit results into the next
 * global model.
 *
 * Client sampling: max(minFitClients, ceil(fraction · available)) sites, chosen with a seeded
 * RNG (seed + round), so a run can be replayed; the seed is part of the experiment's config.
 */
import type { FitConfig } from '../protocol/messages.js';
import { SeededRng } from '../random/seededRng.js';
import { AggregationError, type AggregationRule } from './aggregationRule.js';
import { weightedMetrics, type AggregatedFit, type SiteEvaluation, type Strategy, type WeightedMetrics } from './strategy.js';

export interface SamplingOptions {
  fractionFit: number;
  minFitClients: number;
  fractionEvaluate: number;
  minEvaluateClients: number;
  fit: Omit<FitConfig, 'seed'>;
  seed: number;
}

export class FederatedStrategy implements Strategy {
  constructor(
    private readonly o: SamplingOptions,
    readonly rule: AggregationRule,
  ) {}

  get name(): string {
    return this.rule.name;
  }

  configureFit(round: number, available: string[]): { sites: string[]; config: FitConfig } {
    return { sites: sample(available, this.o.fractionFit, this.o.minFitClients, this.o.seed * 1_000_003 + round), config: { ...this.o.fit, ...this.rule.fitConfig?.(), seed: this.o.seed + round } };
  }

  aggregateFit(_round: number, current: Float32Array, fit: AggregatedFit): Float32Array {
    if (this.rule.needsIndividualUpdates) {
      if (!fit.updates) throw new AggregationError(`${this.rule.name} needs the individual updates, which this round did not keep`);
      return this.rule.aggregateFit(
        current,
        fit.updates.map((u) => ({ params: Float32Array.from(u.delta, (d, i) => current[i] + d), numExamples: u.numExamples })),
      );
    }
    if (fit.totalExamples <= 0) throw new AggregationError(`${this.rule.name} needs at least one training example`);
    // The sum is consumed: divided in place into the mean update (no second float64 vector).
    const mean = fit.weightedDeltaSum;
    if (mean.length !== current.length) throw new AggregationError(`the aggregated update has ${mean.length} values, the model has ${current.length}`);
    const total = fit.totalExamples;
    for (let i = 0; i < mean.length; i++) mean[i] /= total;
    return this.rule.applyMeanDelta!(current, mean);
  }

  configureEvaluate(round: number, available: string[]): string[] {
    return sample(available, this.o.fractionEvaluate, this.o.minEvaluateClients, this.o.seed * 1_000_033 + round);
  }

  aggregateEvaluate(_round: number, results: SiteEvaluation[]): WeightedMetrics {
    return weightedMetrics(results);
  }
}

/** Seeded sample of max(min, ceil(fraction · n)) of the available sites (all of them if fewer). */
export function sample(available: string[], fraction: number, min: number, seed: number): string[] {
  const sorted = [...available].sort();
  const k = Math.min(sorted.length, Math.max(min, Math.ceil(fraction * sorted.length)));
  return new SeededRng(seed).shuffle(sorted).slice(0, k).sort();
}
