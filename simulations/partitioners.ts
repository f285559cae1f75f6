/**
 * How a pooled data set is split over simulated sites (all seeded):
 * - iid: a uniform random split into equal parts;
 * - dirichlet(α): label skew — for each class, the share of each site ~ Dirichlet(α) (small α:
 *   sites see few classes; Hsu et al. 2019);
 * - quantity(α): size skew — site sizes ~ Dirichlet(α), labels uniform within a site;
 * - natural: the data's own grouping (e.g. the Heart Disease hospitals), handled by the caller.
 * Every site gets at least `minPerSite` examples (re-drawn otherwise), so none is empty.
 */
import { DataFormatError } from '../shared/errors.js';
import { SeededRng } from '../shared/random/seededRng.js';

export type PartitionKind = 'iid' | 'dirichlet' | 'quantity';

/** Gamma(shape, 1) by Marsaglia–Tsang (with the shape < 1 boost). */
function gamma(rng: SeededRng, shape: number): number {
  if (shape < 1) return gamma(rng, shape + 1) * Math.pow(rng.next(), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = rng.normal();
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rng.next();
    if (u < 1 - 0.0331 * x ** 4 || Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

export function dirichlet(rng: SeededRng, alpha: number, k: number): number[] {
  const g = Array.from({ length: k }, () => gamma(rng, alpha));
  const sum = g.reduce((a, b) => a + b, 0);
  return g.map((x) => x / sum);
}

/** Splits `indices` into parts of the given proportions (largest-remainder rounding). */
function splitByProportions(indices: number[], proportions: number[]): number[][] {
  const n = indices.length;
  const exact = proportions.map((p) => p * n);
  const counts = exact.map(Math.floor);
  let left = n - counts.reduce((a, b) => a + b, 0);
  const order = exact.map((e, i) => [e - Math.floor(e), i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; left > 0; k++, left--) counts[order[k % order.length][1]]++;
  const parts: number[][] = [];
  let at = 0;
  for (const c of counts) {
    parts.push(indices.slice(at, at + c));
    at += c;
  }
  return parts;
}

/** Indices of the examples for each of `sites` sites. */
export function partition(labels: Int32Array, numClasses: number, sites: number, kind: PartitionKind, o: { alpha?: number; seed: number; minPerSite?: number }): number[][] {
  const n = labels.length;
  const min = o.minPerSite ?? 2;
  if (!(Number.isInteger(sites) && sites >= 1)) throw new DataFormatError(`partition: sites must be a positive integer (got ${sites})`);
  if (n < sites * min) throw new DataFormatError(`partition: ${n} examples cannot give ${sites} sites at least ${min} each`);
  if (kind !== 'iid' && !(o.alpha !== undefined && o.alpha > 0)) throw new DataFormatError(`partition "${kind}" needs alpha > 0`);
  const rng = new SeededRng(o.seed);
  for (let attempt = 0; attempt < 1000; attempt++) {
    let parts: number[][];
    if (kind === 'iid') {
      parts = splitByProportions(rng.shuffle(Array.from({ length: n }, (_, i) => i)), Array(sites).fill(1 / sites));
    } else if (kind === 'quantity') {
      parts = splitByProportions(rng.shuffle(Array.from({ length: n }, (_, i) => i)), dirichlet(rng, o.alpha!, sites));
    } else {
      parts = Array.from({ length: sites }, () => []);
      for (let c = 0; c < numClasses; c++) {
        const idx: number[] = [];
        for (let i = 0; i < n; i++) if (labels[i] === c) idx.push(i);
        splitByProportions(rng.shuffle(idx), dirichlet(rng, o.alpha!, sites)).forEach((p, s) => parts[s].push(...p));
      }
    }
    if (parts.every((p) => p.length >= min)) return parts.map((p) => p.sort((a, b) => a - b));
  }
  throw new DataFormatError(`partition "${kind}" (alpha ${o.alpha}) left a site with fewer than ${min} examples in 1000 draws; use a larger alpha or fewer sites`);
}
