/**
 * An in-memory labelled data set: one flat Float32Array of examples plus integer labels.
 * Images are NHWC ([n, h, w, c]) scaled to [0, 1]; tabular rows are [n, features].
 */
import { DataFormatError } from '../../shared/errors.js';
import { SeededRng } from '../../shared/random/seededRng.js';

export interface Dataset {
  /** Row-major examples, length n * prod(exampleShape). */
  x: Float32Array;
  /** Shape of one example, e.g. [28, 28, 1] or [13]. */
  exampleShape: number[];
  /** Class labels in [0, numClasses). */
  y: Int32Array;
  numClasses: number;
}

/** A data set with its standard splits; `val` may be absent. */
export interface DatasetSplits {
  train: Dataset;
  val?: Dataset;
  test: Dataset;
  /** Where it came from, for reports. */
  source: string;
}

export function exampleSize(d: Pick<Dataset, 'exampleShape'>): number {
  return d.exampleShape.reduce((a, b) => a * b, 1);
}

export function datasetLength(d: Dataset): number {
  return d.y.length;
}

/** Copies the examples at `indices` into a new data set. */
export function subset(d: Dataset, indices: ArrayLike<number>): Dataset {
  const size = exampleSize(d);
  const x = new Float32Array(indices.length * size);
  const y = new Int32Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    x.set(d.x.subarray(j * size, (j + 1) * size), i * size);
    y[i] = d.y[j];
  }
  return { x, exampleShape: [...d.exampleShape], y, numClasses: d.numClasses };
}

/**
 * Seeded, stratified split into fractions (e.g. [0.7, 0.15, 0.15]). Each class is shuffled and
 * divided in the same proportions, so small medical data sets keep their class balance.
 */
export function stratifiedSplit(d: Dataset, fractions: number[], seed: number): Dataset[] {
  const total = fractions.reduce((a, b) => a + b, 0);
  if (fractions.some((f) => f < 0) || Math.abs(total - 1) > 1e-9) throw new DataFormatError(`split fractions must be non-negative and sum to 1, got [${fractions.join(', ')}]`);
  const rng = new SeededRng(seed);
  const parts: number[][] = fractions.map(() => []);
  for (let c = 0; c < d.numClasses; c++) {
    const idx: number[] = [];
    for (let i = 0; i < d.y.length; i++) if (d.y[i] === c) idx.push(i);
    rng.shuffle(idx);
    let start = 0;
    let acc = 0;
    fractions.forEach((f, k) => {
      acc += f;
      const end = k === fractions.length - 1 ? idx.length : Math.round(acc * idx.length);
      parts[k].push(...idx.slice(start, end));
      start = end;
    });
  }
  return parts.map((p) => subset(d, rng.shuffle(p)));
}

/** Checks internal consistency; throws DataFormatError naming `source`. */
export function checkDataset(d: Dataset, source: string): void {
  const size = exampleSize(d);
  if (d.x.length !== d.y.length * size) throw new DataFormatError(`${source}: ${d.y.length} labels but ${d.x.length / size} examples`);
  for (let i = 0; i < d.y.length; i++) {
    const l = d.y[i];
    if (!(l >= 0 && l < d.numClasses)) throw new DataFormatError(`${source}: label ${l} at row ${i} is outside [0, ${d.numClasses})`);
  }
}
