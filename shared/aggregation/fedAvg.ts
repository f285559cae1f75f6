/**
 * FedAvg (McMahan et al. 2017): the next global model is the example-weighted mean of the
 * sites' models. With updates sent as deltas from the same global model,
 *   w' = w + Σ n_k Δ_k / Σ n_k,
 * which equals Flower's `aggregate()` (weighted mean of the sites' parameters) exactly in real
 * arithmetic; we sum in float64.
 *
 * Client sampling: max(minFitClients, ceil(fraction · available)) sites, chosen with a seeded
 * RNG (seed + round), so a run can be replayed; the seed is part of the experiment's config.
 */
import type { FitConfig } from '../protocol/messages.js';
import { SeededRng } from '../random/seededRng.js';
import { weightedMetrics, type AggregatedFit, type SiteEvaluation, type Strategy, type WeightedMetrics } from './strategy.js';

export interface FedAvgOptions {
  fractionFit: number;
  minFitClients: number;
  fractionEvaluate: number;
  minEvaluateClients: number;
  fit: Omit<FitConfig, 'seed'>;
  seed: number;
}

export class FedAvg implements Strategy {
  readonly name = 'fedavg';
  constructor(private readonly o: FedAvgOptions) {}

  configureFit(round: number, available: string[]): { sites: string[]; config: FitConfig } {
    return { sites: sample(available, this.o.fractionFit, this.o.minFitClients, this.o.seed * 1_000_003 + round), config: { ...this.o.fit, seed: this.o.seed + round } };
  }

  aggregateFit(_round: number, current: Float32Array, fit: AggregatedFit): Float32Array {
    if (fit.totalExamples <= 0) throw new RangeError('FedAvg needs at least one example');
    const next = new Float32Array(current.length);
    const inv = 1 / fit.totalExamples;
    for (let i = 0; i < current.length; i++) next[i] = current[i] + fit.weightedDeltaSum[i] * inv;
    return next;
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
