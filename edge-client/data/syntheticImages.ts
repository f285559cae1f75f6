/**
 * Seeded synthetic medical-like images for tests and the offline demo.
 *
 * Each class has its own structure (class 0: a soft round blob, class 1: a ring, class 2: a
 * vertical bar, class 3: a horizontal bar, then diagonal bars...), placed with random jitter and
 * size. Sites differ like hospitals with different scanners: an intensity shift, a contrast
 * factor and a noise level per site. Same seed, same images.
 */
import { SeededRng } from '../../shared/random/seededRng.js';
import type { Dataset } from './dataset.js';

export interface ScannerProfile {
  /** Added to every pixel (brightness offset of this site's scanner). */
  intensityShift: number;
  /** Multiplies the structure's intensity. */
  contrast: number;
  /** Standard deviation of Gaussian pixel noise. */
  noise: number;
}

export const DEFAULT_SCANNER: ScannerProfile = { intensityShift: 0, contrast: 1, noise: 0.08 };

export interface SyntheticOptions {
  n: number;
  numClasses?: number;
  size?: number;
  seed: number;
  scanner?: Partial<ScannerProfile>;
}

export function syntheticImages(o: SyntheticOptions): Dataset {
  const classes = o.numClasses ?? 2;
  const size = o.size ?? 28;
  const scanner = { ...DEFAULT_SCANNER, ...o.scanner };
  const rng = new SeededRng(o.seed);
  const x = new Float32Array(o.n * size * size);
  const y = new Int32Array(o.n);
  for (let i = 0; i < o.n; i++) {
    const label = i % classes; // balanced classes, then shuffled below
    y[i] = label;
    const cx = size / 2 + rng.uniform(-3, 3);
    const cy = size / 2 + rng.uniform(-3, 3);
    const r = size * rng.uniform(0.18, 0.28);
    const angle = ((label - 2) * Math.PI) / Math.max(classes - 2, 1);
    const base = i * size * size;
    for (let py = 0; py < size; py++) {
      for (let px = 0; px < size; px++) {
        const dx = px - cx;
        const dy = py - cy;
        const d = Math.sqrt(dx * dx + dy * dy);
        let v: number;
        if (label === 0) v = Math.exp(-(d * d) / (2 * (r * 0.6) ** 2));
        else if (label === 1) v = Math.exp(-((d - r) ** 2) / 2);
        else {
          // a bar through the centre at a class-specific angle
          const dist = Math.abs(-Math.sin(angle) * dx + Math.cos(angle) * dy);
          v = dist < 2 && d < r * 1.6 ? 1 : 0;
        }
        const pixel = scanner.intensityShift + scanner.contrast * 0.8 * v + scanner.noise * rng.normal();
        x[base + py * size + px] = Math.min(1, Math.max(0, pixel + 0.1));
      }
    }
  }
  // Shuffle examples (labels move with their images).
  const order = rng.permutation(o.n);
  const xs = new Float32Array(x.length);
  const ys = new Int32Array(o.n);
  const px = size * size;
  for (let i = 0; i < o.n; i++) {
    xs.set(x.subarray(order[i] * px, (order[i] + 1) * px), i * px);
    ys[i] = y[order[i]];
  }
  return { x: xs, exampleShape: [size, size, 1], y: ys, numClasses: classes };
}
