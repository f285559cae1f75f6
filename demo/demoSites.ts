/**
 * The demo's hospitals and their data: seeded synthetic 28×28 images (edge-client/data/
 * syntheticImages.ts), non-IID across sites — each site has its own class balance (one class
 * common, another rare) and its own "scanner" (intensity shift, contrast, noise). Each site's
 * file is a MedMNIST-style .npz split 70/10/20 (train/val/test) stratified by class, so every
 * split has the site's own balance; the site trains on train, the federation evaluates on val,
 * and the demo scores models on test.
 */
import { writeFileSync } from 'node:fs';
import { SeededRng } from '../shared/random/seededRng.js';
import { syntheticImages, type ScannerProfile } from '../edge-client/data/syntheticImages.js';
import { encodeNpz, type NpzArray } from '../edge-client/data/npzWriter.js';

export interface DemoSiteProfile {
  name: string;
  seed: number;
  /** Share of each class in this site's data (sums to 1). */
  classBalance: number[];
  scanner: ScannerProfile;
  /** Images in all (train + val + test). */
  examples: number;
}

const SHIFTS = [0, 0.12, -0.06, 0.06, -0.1, 0.15, -0.03, 0.09];
const CONTRASTS = [1, 0.85, 1.15, 0.95, 1.1, 0.9, 1.05, 0.8];
const NOISES = [0.08, 0.12, 0.1, 0.14, 0.09, 0.11, 0.13, 0.1];

/** `sites` hospitals: site i has class i mod C common (60%), the next one at 30%, the rest rare. */
export function demoSiteProfiles(sites: number, classes: number, examples: number): DemoSiteProfile[] {
  return Array.from({ length: sites }, (_, i) => {
    const weights = Array.from({ length: classes }, (_, c) => {
      const rank = (c - i + classes * 8) % classes; // 0: this site's common class
      return rank === 0 ? 0.6 : rank === 1 ? 0.3 : 0.1 / Math.max(classes - 2, 1);
    });
    const total = weights.reduce((a, b) => a + b, 0);
    return {
      name: `hospital-${String.fromCharCode(97 + (i % 26))}${i >= 26 ? Math.floor(i / 26) : ''}`,
      seed: 100 + i,
      classBalance: weights.map((w) => w / total),
      scanner: { intensityShift: SHIFTS[i % SHIFTS.length], contrast: CONTRASTS[i % CONTRASTS.length], noise: NOISES[i % NOISES.length] },
      examples,
    };
  });
}

export interface WrittenSite {
  /** Examples per class. */
  counts: number[];
  split: { train: number; val: number; test: number };
}

/** Writes the site's .npz: images drawn per class to its balance, split 70/10/20 per class. */
export function writeDemoSiteData(p: DemoSiteProfile, file: string): WrittenSite {
  const classes = p.classBalance.length;
  const counts = p.classBalance.map((w) => Math.max(5, Math.round(w * p.examples)));
  // syntheticImages makes balanced classes: make enough of every class, then keep what this site has.
  const pool = syntheticImages({ n: Math.max(...counts) * classes, numClasses: classes, seed: p.seed, scanner: p.scanner });
  const px = 28 * 28;
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < pool.y.length; i++) if (byClass[pool.y[i]].length < counts[pool.y[i]]) byClass[pool.y[i]].push(i);
  const parts: Record<'train' | 'val' | 'test', number[]> = { train: [], val: [], test: [] };
  for (const ids of byClass) {
    const nTrain = Math.round(ids.length * 0.7);
    const nVal = Math.max(1, Math.round(ids.length * 0.1));
    parts.train.push(...ids.slice(0, nTrain));
    parts.val.push(...ids.slice(nTrain, nTrain + nVal));
    parts.test.push(...ids.slice(nTrain + nVal));
  }
  const rng = new SeededRng(p.seed + 7);
  const arrays: Record<string, NpzArray> = {};
  for (const [name, ids] of Object.entries(parts)) {
    const order = rng.permutation(ids.length);
    const images = new Uint8Array(ids.length * px);
    const labels = new Int32Array(ids.length);
    for (let k = 0; k < ids.length; k++) {
      const src = ids[order[k]];
      for (let j = 0; j < px; j++) images[k * px + j] = Math.round(pool.x[src * px + j] * 255);
      labels[k] = pool.y[src];
    }
    arrays[`${name}_images`] = { dtype: 'u1', shape: [ids.length, 28, 28], data: images };
    arrays[`${name}_labels`] = { dtype: 'i4', shape: [ids.length, 1], data: labels };
  }
  writeFileSync(file, encodeNpz(arrays));
  return { counts, split: { train: parts.train.length, val: parts.val.length, test: parts.test.length } };
}
