/**
 * Robust aggregation rules: they look at every site's parameters (so they cannot run under
 * secure aggregation) and ignore example counts, as in Flower. Each is a pure function of the
 * results plus a small class; equations and tie-breaking follow Flower's `aggregate.py`:
 * - FedMedian (Yin et al. 2018): coordinate-wise median (mean of the two middle values for an
 *   even count, like numpy.median).
 * - FedTrimmedAvg (Yin et al. 2018): coordinate-wise mean after cutting ⌊β n⌋ values from each
 *   end (scipy's trim_mean; Flower's default β = 0.2).
 * - Krum (Blanchard et al. 2017): score_k = Σ of the squared distances from w_k to its n − f − 2
 *   nearest others (at least 1); the lowest score wins, ties to the lower index. Multi-Krum
 *   (numClientsToKeep m > 0): the example-weighted mean of the m lowest scores (Flower).
 * - Bulyan (El Mhamdi et al. 2018): needs n ≥ 4f + 3; picks θ = n − 2f models by repeated Krum,
 *   then per coordinate averages the β = θ − 2f values closest to the selection's median.
 */
import { AggregationError, checkResults, type AggregationRule, type FitResult, type RuleState } from './aggregationRule.js';
import { FedAvg } from './fedAvg.js';

abstract class RobustRule implements AggregationRule {
  abstract readonly name: string;
  readonly needsIndividualUpdates = true;
  abstract aggregateFit(current: Float32Array, results: FitResult[]): Float32Array;
  exportState(): RuleState {
    return {};
  }
  importState(): void {}
}

/** A count option (default 0): an integer >= 0. */
function countOption(rule: string, name: string, value: number | undefined): number {
  const v = value ?? 0;
  if (!(Number.isInteger(v) && v >= 0)) throw new AggregationError(`${rule}: ${name} must be an integer >= 0 (got ${v})`);
  return v;
}

/** Coordinate-wise median of the vectors. */
export function coordinateMedian(vectors: Float32Array[]): Float32Array {
  const n = vectors.length;
  const out = new Float32Array(vectors[0].length);
  const column = new Float64Array(n);
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < n; k++) column[k] = vectors[k][i];
    column.sort();
    out[i] = n % 2 ? column[(n - 1) / 2] : (column[n / 2 - 1] + column[n / 2]) / 2;
  }
  return out;
}

/** Coordinate-wise mean after removing ⌊proportion · n⌋ values at each end. */
export function coordinateTrimmedMean(vectors: Float32Array[], proportion: number): Float32Array {
  const n = vectors.length;
  const cut = Math.floor(proportion * n);
  if (cut >= n - cut) throw new AggregationError(`fedtrimmedavg: beta ${proportion} trims all ${n} values; use a smaller beta or more sites`);
  const out = new Float32Array(vectors[0].length);
  const column = new Float64Array(n);
  for (let i = 0; i < out.length; i++) {
    for (let k = 0; k < n; k++) column[k] = vectors[k][i];
    column.sort();
    let s = 0;
    for (let k = cut; k < n - cut; k++) s += column[k];
    out[i] = s / (n - 2 * cut);
  }
  return out;
}

/** Matrix of squared Euclidean distances (float64). */
export function squaredDistances(vectors: Float32Array[]): Float64Array[] {
  const n = vectors.length;
  const d = Array.from({ length: n }, () => new Float64Array(n));
  for (let a = 0; a < n; a++) {
    for (let b = a + 1; b < n; b++) {
      const x = vectors[a];
      const y = vectors[b];
      let s = 0;
      for (let i = 0; i < x.length; i++) {
        const t = x[i] - y[i];
        s += t * t;
      }
      d[a][b] = d[b][a] = s;
    }
  }
  return d;
}

/** Krum scores: sum of the squared distances to the max(1, n − f − 2) nearest other vectors. */
export function krumScores(distances: Float64Array[], numMalicious: number): number[] {
  const n = distances.length;
  const closest = Math.max(1, n - numMalicious - 2);
  return distances.map((row, k) => {
    const others = [...row].filter((_, j) => j !== k).sort((a, b) => a - b);
    return others.slice(0, closest).reduce((a, b) => a + b, 0);
  });
}

/** Indices of the `count` lowest scores, ties to the lower index. */
function lowest(scores: number[], count: number): number[] {
  return scores
    .map((s, i) => [s, i] as const)
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .slice(0, count)
    .map(([, i]) => i);
}

export class FedMedian extends RobustRule {
  readonly name = 'fedmedian';
  aggregateFit(current: Float32Array, results: FitResult[]): Float32Array {
    checkResults(this.name, current, results);
    return coordinateMedian(results.map((r) => r.params));
  }
}

export interface FedTrimmedAvgOptions {
  /** Fraction cut from each end (Flower's default 0.2). */
  beta?: number;
}

export class FedTrimmedAvg extends RobustRule {
  readonly name = 'fedtrimmedavg';
  readonly beta: number;
  constructor(o: FedTrimmedAvgOptions = {}) {
    super();
    this.beta = o.beta ?? 0.2;
    if (!(this.beta >= 0 && this.beta < 0.5)) throw new AggregationError(`fedtrimmedavg: beta must be in [0, 0.5) (got ${this.beta})`);
  }
  aggregateFit(current: Float32Array, results: FitResult[]): Float32Array {
    checkResults(this.name, current, results);
    return coordinateTrimmedMean(results.map((r) => r.params), this.beta);
  }
}

export interface KrumOptions {
  /** f: how many sites may be malicious (Flower's default 0). */
  numMaliciousClients?: number;
  /** Multi-Krum: average the m best (0 = plain Krum, Flower's default). */
  numClientsToKeep?: number;
}

export class Krum extends RobustRule {
  readonly name = 'krum';
  readonly numMalicious: number;
  readonly toKeep: number;
  constructor(o: KrumOptions = {}) {
    super();
    this.numMalicious = countOption('krum', 'numMaliciousClients', o.numMaliciousClients);
    this.toKeep = countOption('krum', 'numClientsToKeep', o.numClientsToKeep);
  }
  aggregateFit(current: Float32Array, results: FitResult[]): Float32Array {
    checkResults(this.name, current, results);
    const scores = krumScores(squaredDistances(results.map((r) => r.params)), this.numMalicious);
    if (this.toKeep > 0) {
      if (this.toKeep > results.length) throw new AggregationError(`krum: numClientsToKeep ${this.toKeep} exceeds the ${results.length} results`);
      return new FedAvg().aggregateFit(current, lowest(scores, this.toKeep).map((i) => results[i]));
    }
    return Float32Array.from(results[lowest(scores, 1)[0]].params);
  }
}

export interface BulyanOptions {
  /** f: how many sites may be malicious (Flower's default 0). Needs n ≥ 4f + 3. */
  numMaliciousClients?: number;
}

export class Bulyan extends RobustRule {
  readonly name = 'bulyan';
  readonly numMalicious: number;
  constructor(o: BulyanOptions = {}) {
    super();
    this.numMalicious = countOption('bulyan', 'numMaliciousClients', o.numMaliciousClients);
  }

  /** The fewest sites Bulyan accepts for f malicious ones. */
  static minSites(numMalicious: number): number {
    return 4 * numMalicious + 3;
  }

  aggregateFit(current: Float32Array, results: FitResult[]): Float32Array {
    checkResults(this.name, current, results);
    const f = this.numMalicious;
    const n = results.length;
    if (n < Bulyan.minSites(f)) throw new AggregationError(`bulyan: needs at least 4f + 3 = ${Bulyan.minSites(f)} results for numMaliciousClients ${f}, got ${n}`);
    const theta = n - 2 * f;
    const beta = theta - 2 * f;
    // Repeated Krum over the remaining models (distances computed once).
    const all = squaredDistances(results.map((r) => r.params));
    let remaining = results.map((_, i) => i);
    const selected: Float32Array[] = [];
    for (let s = 0; s < theta; s++) {
      const sub = remaining.map((a) => Float64Array.from(remaining, (b) => all[a][b]));
      const best = lowest(krumScores(sub, f), 1)[0];
      selected.push(results[remaining[best]].params);
      remaining = remaining.filter((_, i) => i !== best);
    }
    const median = coordinateMedian(selected);
    // Per coordinate: mean of the β values closest to the median (ties to the earlier selection).
    const out = new Float32Array(current.length);
    const order = selected.map((_, k) => k);
    for (let i = 0; i < out.length; i++) {
      const m = median[i];
      order.sort((a, b) => Math.abs(selected[a][i] - m) - Math.abs(selected[b][i] - m) || a - b);
      let sum = 0;
      for (let k = 0; k < beta; k++) sum += selected[order[k]][i];
      out[i] = sum / beta;
    }
    return out;
  }
}
