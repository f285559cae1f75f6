/**
 * MedMNIST-style .npz loader: train/val/test images (uint8, N x H x W or N x H x W x C) and
 * labels (N or N x 1). Pixels are scaled to [0, 1] and images become NHWC.
 */
import { readFileSync } from 'node:fs';
import { DataFormatError } from '../../shared/errors.js';
import type { Dataset, DatasetSplits } from './dataset.js';
import type { NpyArray } from './npyReader.js';
import { readNpz } from './npzReader.js';

export function loadMedmnistNpz(path: string): DatasetSplits {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new DataFormatError(`${path}: cannot read file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const arrays = readNpz(bytes, path);
  const need = ['train_images', 'train_labels', 'test_images', 'test_labels'];
  const missing = need.filter((k) => !arrays.has(k));
  if (missing.length) throw new DataFormatError(`${path}: missing arrays ${missing.join(', ')} (has ${[...arrays.keys()].join(', ')}); expected a MedMNIST-style npz`);
  const splits = ['train', 'val', 'test'].filter((s) => arrays.has(`${s}_images`));
  let maxLabel = 0;
  const raw = new Map<string, { images: NpyArray; labels: Int32Array }>();
  for (const s of splits) {
    const images = arrays.get(`${s}_images`)!;
    const labelsArr = arrays.get(`${s}_labels`);
    if (!labelsArr) throw new DataFormatError(`${path}: has ${s}_images but no ${s}_labels`);
    const labels = toLabels(labelsArr, `${path}:${s}_labels`);
    if (images.shape.length !== 3 && images.shape.length !== 4) throw new DataFormatError(`${path}:${s}_images has shape (${images.shape.join(', ')}); expected N x H x W or N x H x W x C`);
    if (images.shape[0] !== labels.length) throw new DataFormatError(`${path}: ${s}_images has ${images.shape[0]} images but ${s}_labels has ${labels.length} labels`);
    for (const l of labels) maxLabel = Math.max(maxLabel, l);
    raw.set(s, { images, labels });
  }
  const numClasses = Math.max(2, maxLabel + 1);
  const toDataset = (s: string): Dataset => {
    const { images, labels } = raw.get(s)!;
    const [, h, w, c = 1] = images.shape;
    const x = new Float32Array(images.data.length);
    const scale = images.dtype === 'u1' ? 1 / 255 : 1;
    for (let i = 0; i < x.length; i++) x[i] = images.data[i] * scale;
    return { x, exampleShape: [h, w, c], y: labels, numClasses };
  };
  return {
    train: toDataset('train'),
    val: raw.has('val') ? toDataset('val') : undefined,
    test: toDataset('test'),
    source: path,
  };
}

/** Integer class labels from an (N) or (N, 1) array. */
export function toLabels(a: NpyArray, source: string): Int32Array {
  if (!(a.shape.length === 1 || (a.shape.length === 2 && a.shape[1] === 1))) throw new DataFormatError(`${source}: labels must have shape (N) or (N, 1), got (${a.shape.join(', ')})`);
  if (a.dtype === 'f4' || a.dtype === 'f8') {
    for (const v of a.data) if (!Number.isInteger(v)) throw new DataFormatError(`${source}: label ${v} is not an integer class`);
  }
  const out = new Int32Array(a.shape[0]);
  for (let i = 0; i < out.length; i++) {
    const v = a.data[i];
    if (v < 0) throw new DataFormatError(`${source}: negative label ${v} at index ${i}`);
    out[i] = v;
  }
  return out;
}
