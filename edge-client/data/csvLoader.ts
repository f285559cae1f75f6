/**
 * CSV tabular loader: numeric feature columns and one label column, with missing-value
 * handling. Any value that is neither a number nor a missing-value marker is an error naming
 * the file, line and column (we never guess what "abc" in a lab value means).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import { DataFormatError } from '../../shared/errors.js';
import type { Dataset } from './dataset.js';

export interface CsvOptions {
  /** Label column: header name or 0-based index; default the last column. */
  labelColumn?: string | number;
  /** Whether the first row is a header; default: detected (text above numbers). */
  header?: boolean;
  /** Columns to ignore (names or indices), e.g. an id column. */
  dropColumns?: (string | number)[];
  /** Cells treated as missing; default '', '?', 'NA', 'NaN', 'nan', 'null'. */
  missingValues?: string[];
  /** What to do with missing feature values: fill with the column mean (default) or drop the row. */
  missing?: 'mean' | 'drop';
  /** Map the label to 1 when > 0 and 0 otherwise (e.g. UCI heart disease "num"). */
  binarizeLabel?: boolean;
}

export interface CsvDataset extends Dataset {
  featureNames: string[];
  /** Original label value for each class index. */
  classValues: string[];
  rowsDropped: number;
}

const DEFAULT_MISSING = ['', '?', 'NA', 'NaN', 'nan', 'null'];

export function loadCsv(path: string, options: CsvOptions = {}): CsvDataset {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new DataFormatError(`${path}: cannot read file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return parseCsv(text, path, options);
}

export function parseCsv(text: string, source: string, options: CsvOptions = {}): CsvDataset {
  let rows: string[][];
  try {
    rows = parse(text, { skip_empty_lines: true, trim: true, relax_column_count: false }) as string[][];
  } catch (err) {
    throw new DataFormatError(`${source}: malformed CSV: ${(err as Error).message}`);
  }
  if (rows.length === 0) throw new DataFormatError(`${source}: the file has no rows`);
  const missing = new Set(options.missingValues ?? DEFAULT_MISSING);
  const isNumeric = (s: string): boolean => s.trim() !== '' && Number.isFinite(Number(s));
  // A header row has a non-numeric cell where the next row has a number (string-valued label
  // columns are non-numeric in every row, so they do not make the first row a header).
  const hasHeader = options.header ?? (rows.length > 1 && rows[0].some((c, i) => !isNumeric(c) && !missing.has(c) && isNumeric(rows[1][i] ?? '')));
  const width = rows[0].length;
  const names = hasHeader ? rows[0] : rows[0].map((_, i) => `col${i}`);
  const body = hasHeader ? rows.slice(1) : rows;
  const colIndex = (c: string | number, what: string): number => {
    const i = typeof c === 'number' ? c : names.indexOf(c);
    if (!(i >= 0 && i < width)) throw new DataFormatError(`${source}: ${what} column ${JSON.stringify(c)} not found (columns: ${names.join(', ')})`);
    return i;
  };
  const labelIdx = colIndex(options.labelColumn ?? width - 1, 'label');
  const dropped = new Set((options.dropColumns ?? []).map((c) => colIndex(c, 'dropped')));
  const featureIdx = names.map((_, i) => i).filter((i) => i !== labelIdx && !dropped.has(i));
  const lineOffset = hasHeader ? 2 : 1;

  // Parse features (NaN = missing) and raw labels.
  const feats: number[][] = [];
  const labelsRaw: string[] = [];
  let rowsDropped = 0;
  body.forEach((row, r) => {
    const label = row[labelIdx];
    if (missing.has(label)) {
      rowsDropped++;
      return; // a row without a label cannot be used for supervised training
    }
    const values = featureIdx.map((i) => {
      const cell = row[i];
      if (missing.has(cell)) return NaN;
      if (!isNumeric(cell)) throw new DataFormatError(`${source}: line ${r + lineOffset}, column "${names[i]}": cannot parse ${JSON.stringify(cell)} as a number`);
      return Number(cell);
    });
    if (options.missing === 'drop' && values.some(Number.isNaN)) {
      rowsDropped++;
      return;
    }
    feats.push(values);
    labelsRaw.push(label);
  });
  if (feats.length === 0) throw new DataFormatError(`${source}: no usable rows (all ${body.length} rows had missing labels or values)`);

  // Labels: binarised, or integer classes 0..K-1 as they are, or distinct values in sorted order.
  let y: Int32Array;
  let classValues: string[];
  if (options.binarizeLabel) {
    y = Int32Array.from(labelsRaw, (l, r) => {
      if (!isNumeric(l)) throw new DataFormatError(`${source}: label ${JSON.stringify(l)} (row ${r + 1}) is not numeric; cannot binarise`);
      return Number(l) > 0 ? 1 : 0;
    });
    classValues = ['0', '>0'];
  } else {
    const distinct = [...new Set(labelsRaw)];
    const allInts = distinct.every((l) => isNumeric(l) && Number.isInteger(Number(l)) && Number(l) >= 0);
    if (allInts && Math.max(...distinct.map(Number)) < 1000) {
      const k = Math.max(...distinct.map(Number)) + 1;
      classValues = Array.from({ length: k }, (_, i) => String(i));
      y = Int32Array.from(labelsRaw, Number);
    } else {
      classValues = distinct.sort();
      y = Int32Array.from(labelsRaw, (l) => classValues.indexOf(l));
    }
  }

  // Mean imputation of missing feature values (column means over the present values).
  const f = featureIdx.length;
  const means = new Float64Array(f);
  const counts = new Float64Array(f);
  for (const row of feats) row.forEach((v, j) => { if (!Number.isNaN(v)) { means[j] += v; counts[j]++; } });
  for (let j = 0; j < f; j++) means[j] = counts[j] ? means[j] / counts[j] : 0;
  const x = new Float32Array(feats.length * f);
  feats.forEach((row, i) => row.forEach((v, j) => { x[i * f + j] = Number.isNaN(v) ? means[j] : v; }));
  return {
    x,
    exampleShape: [f],
    y,
    numClasses: Math.max(2, classValues.length),
    featureNames: featureIdx.map((i) => names[i]),
    classValues,
    rowsDropped,
  };
}

/**
 * Z-score standardisation with statistics from `fit` applied to every given set (in place).
 * Returns the means and standard deviations used.
 */
export function standardize(fit: Dataset, ...apply: Dataset[]): { mean: Float64Array; std: Float64Array } {
  const f = fit.exampleShape[0];
  const n = fit.y.length;
  const mean = new Float64Array(f);
  const std = new Float64Array(f);
  for (let i = 0; i < n; i++) for (let j = 0; j < f; j++) mean[j] += fit.x[i * f + j] / n;
  for (let i = 0; i < n; i++) for (let j = 0; j < f; j++) std[j] += (fit.x[i * f + j] - mean[j]) ** 2 / n;
  for (let j = 0; j < f; j++) std[j] = Math.sqrt(std[j]) || 1;
  for (const d of [fit, ...apply]) {
    for (let i = 0; i < d.y.length; i++) for (let j = 0; j < f; j++) d.x[i * f + j] = (d.x[i * f + j] - mean[j]) / std[j];
  }
  return { mean, std };
}
