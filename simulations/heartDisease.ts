/**
 * UCI Heart Disease as four hospitals (FLamby's Fed-Heart-Disease): the original
 * `processed.{cleveland,hungarian,switzerland,va}.data` files, preprocessed as FLamby does —
 * drop slope, ca and thal; drop rows with any other value missing (740 rows remain); one-hot `cp`
 * and `restecg` without their first level (13 features); target `num > 0`.
 *
 * Standardisation (by the pooled training split's mean and deviation, as FLamby does) is left
 * to the caller, once the train/test split is known.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataFormatError } from '../shared/errors.js';
import type { Dataset } from '../edge-client/data/dataset.js';

export const HEART_DISEASE_CENTERS = ['cleveland', 'hungarian', 'switzerland', 'va'] as const;

export const HEART_DISEASE_FEATURES = ['age', 'sex', 'trestbps', 'chol', 'fbs', 'thalach', 'exang', 'oldpeak', 'cp_2', 'cp_3', 'cp_4', 'restecg_1', 'restecg_2'];

/** One center's records after FLamby's preprocessing. */
export function loadHeartDiseaseCenter(dir: string, center: (typeof HEART_DISEASE_CENTERS)[number]): Dataset & { rowsDropped: number } {
  const path = join(dir, `processed.${center}.data`);
  if (!existsSync(path)) throw new DataFormatError(`${path}: not found (the UCI Heart Disease folder must hold processed.{cleveland,hungarian,switzerland,va}.data)`);
  const lines = readFileSync(path, 'utf8').split('\n').filter((l) => l.trim() !== '');
  const x: number[] = [];
  const y: number[] = [];
  let dropped = 0;
  lines.forEach((line, i) => {
    const cells = line.split(',').map((c) => c.trim());
    if (cells.length !== 14) throw new DataFormatError(`${path}:${i + 1}: expected 14 columns, found ${cells.length}`);
    const kept = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 13]; // drop slope (10), ca (11), thal (12)
    if (kept.some((c) => cells[c] === '?')) {
      dropped++;
      return;
    }
    const v = cells.map((c, j) => {
      if (!kept.includes(j)) return NaN;
      const n = Number(c);
      if (!Number.isFinite(n)) throw new DataFormatError(`${path}:${i + 1}: column ${j + 1} is not a number ("${c}")`);
      return n;
    });
    const [age, sex, cp, trestbps, chol, fbs, restecg, thalach, exang, oldpeak] = v;
    x.push(age, sex, trestbps, chol, fbs, thalach, exang, oldpeak, cp === 2 ? 1 : 0, cp === 3 ? 1 : 0, cp === 4 ? 1 : 0, restecg === 1 ? 1 : 0, restecg === 2 ? 1 : 0);
    y.push(v[13] > 0 ? 1 : 0);
  });
  return { x: Float32Array.from(x), exampleShape: [HEART_DISEASE_FEATURES.length], y: Int32Array.from(y), numClasses: 2, rowsDropped: dropped };
}
