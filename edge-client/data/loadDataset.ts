/**
 * One entry point for local data: picks the loader from the path and returns train/val/test.
 *   *.npz          MedMNIST-style arrays with their own splits
 *   *.csv, *.data  tabular; split here (stratified, seeded) and standardised with train statistics
 *   a folder       PNG images in one sub-folder per class; split here (stratified, seeded)
 */
import { statSync } from 'node:fs';
import { DataFormatError } from '../../shared/errors.js';
import { loadCsv, standardize, type CsvOptions } from './csvLoader.js';
import { stratifiedSplit, type Dataset, type DatasetSplits } from './dataset.js';
import { loadMedmnistNpz } from './medmnistLoader.js';
import { loadPngFolder } from './pngFolderLoader.js';

export interface LoadOptions {
  /** Seed for the split of data sets that have no splits of their own. */
  seed?: number;
  /** Fractions [train, val, test] for such data sets; default [0.7, 0.15, 0.15]. */
  split?: [number, number, number];
  csv?: CsvOptions;
  /** Z-score tabular features with the train split's statistics (default true). */
  standardize?: boolean;
}

export function loadDataset(path: string, options: LoadOptions = {}): DatasetSplits {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (err) {
    throw new DataFormatError(`${path}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const seed = options.seed ?? 0;
  const fractions = options.split ?? [0.7, 0.15, 0.15];
  const splitThree = (d: Dataset): DatasetSplits => {
    const [train, val, test] = stratifiedSplit(d, fractions, seed);
    return { train, val: val.y.length ? val : undefined, test, source: path };
  };
  if (isDir) return splitThree(loadPngFolder(path));
  const lower = path.toLowerCase();
  if (lower.endsWith('.npz')) return loadMedmnistNpz(path);
  if (lower.endsWith('.csv') || lower.endsWith('.data') || lower.endsWith('.tsv')) {
    const splits = splitThree(loadCsv(path, options.csv));
    if (options.standardize ?? true) standardize(splits.train, ...(splits.val ? [splits.val] : []), splits.test);
    return splits;
  }
  throw new DataFormatError(`${path}: unknown data format; expected a .npz, a .csv or a folder of PNG class folders`);
}
