/**
 * PNG folder loader: ROOT/<class name>/*.png, one sub-folder per class (class indices follow
 * the sorted folder names). Images are decoded with pngjs, converted to grayscale (or kept as
 * RGB with channels: 3) and scaled to [0, 1]. All images must have the same size.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { DataFormatError } from '../../shared/errors.js';
import type { Dataset } from './dataset.js';

export interface PngFolderDataset extends Dataset {
  classNames: string[];
  files: string[];
}

export function loadPngFolder(root: string, options: { channels?: 1 | 3 } = {}): PngFolderDataset {
  const channels = options.channels ?? 1;
  let classNames: string[];
  try {
    classNames = readdirSync(root).filter((d) => statSync(join(root, d)).isDirectory()).sort();
  } catch (err) {
    throw new DataFormatError(`${root}: cannot read folder (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  if (classNames.length < 2) throw new DataFormatError(`${root}: expected one sub-folder per class (at least 2), found ${classNames.length}`);
  const files: string[] = [];
  const labels: number[] = [];
  classNames.forEach((c, k) => {
    for (const f of readdirSync(join(root, c)).filter((f) => f.toLowerCase().endsWith('.png')).sort()) {
      files.push(join(root, c, f));
      labels.push(k);
    }
  });
  if (files.length === 0) throw new DataFormatError(`${root}: no .png files in the class folders`);
  let h = 0;
  let w = 0;
  let x = new Float32Array(0);
  files.forEach((file, i) => {
    const img = decodePng(readFileSync(file), file);
    if (i === 0) {
      h = img.height;
      w = img.width;
      x = new Float32Array(files.length * h * w * channels);
    } else if (img.height !== h || img.width !== w) {
      throw new DataFormatError(`${file}: image is ${img.width}x${img.height} but the first image is ${w}x${h}; all images must have one size`);
    }
    x.set(pixelsToFloat(img, channels), i * h * w * channels);
  });
  return { x, exampleShape: [h, w, channels], y: Int32Array.from(labels), numClasses: classNames.length, classNames, files };
}

export interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel (pngjs converts every PNG colour type and bit depth to this). */
  rgba: Uint8Array;
}

export function decodePng(bytes: Uint8Array, source: string): DecodedPng {
  try {
    const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return { width: png.width, height: png.height, rgba: png.data };
  } catch (err) {
    throw new DataFormatError(`${source}: not a valid PNG image (${(err as Error).message})`);
  }
}

/** RGBA bytes -> [h, w, channels] floats in [0, 1]; grayscale uses ITU-R BT.601 luma. */
export function pixelsToFloat(img: DecodedPng, channels: 1 | 3): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n * channels);
  for (let p = 0; p < n; p++) {
    const r = img.rgba[p * 4];
    const g = img.rgba[p * 4 + 1];
    const b = img.rgba[p * 4 + 2];
    if (channels === 1) out[p] = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
    else {
      out[p * 3] = r / 255;
      out[p * 3 + 1] = g / 255;
      out[p * 3 + 2] = b / 255;
    }
  }
  return out;
}
