/**
 * Labelled DICOM images for the clinical-loop tests: PneumoniaMNIST chest X-rays from
 * ../shared/data (real images, 0 = normal, 1 = pneumonia) when it is there, synthetic ones
 * otherwise, written as explicit-VR little-endian CR files with a patient name and ID each.
 */
import { loadMedmnistNpz } from '../../edge-client/data/medmnistLoader.js';
import { syntheticImages } from '../../edge-client/data/syntheticImages.js';
import type { Dataset } from '../../edge-client/data/dataset.js';
import { newUid, writeCrImage } from './dicomWriter.js';
import { sharedDataFile } from './paths.js';

export interface LabelledDicom {
  bytes: Buffer;
  sopInstanceUid: string;
  label: number;
  patientName: string;
  patientId: string;
}

let cached: { data: Dataset; source: string } | null = null;

/** The images the tests draw from (the real train split, or 2,000 synthetic ones). */
export function dicomSourceImages(): { data: Dataset; source: string } {
  if (cached) return cached;
  const file = sharedDataFile('medmnist_pneumonia/pneumoniamnist_balanced.npz');
  cached = file ? { data: loadMedmnistNpz(file).train, source: file } : { data: syntheticImages({ n: 2000, seed: 11 }), source: 'synthetic (../shared/data absent)' };
  return cached;
}

/** `n` images spread over the whole set (its classes may be sorted), starting at `offset`, one patient each. */
export function labelledDicom(n: number, o: { offset: number; site: string }): LabelledDicom[] {
  const { data } = dicomSourceImages();
  const size = 28 * 28;
  const out: LabelledDicom[] = [];
  for (let k = 0; k < n; k++) {
    const i = (o.offset + k * Math.floor(data.y.length / (n + 1))) % data.y.length;
    const pixels = new Uint8Array(size);
    for (let j = 0; j < size; j++) pixels[j] = Math.round(Math.min(1, Math.max(0, data.x[i * size + j])) * 255);
    const patientId = `${o.site.toUpperCase()}-PID-${String(100000 + k)}`;
    const patientName = `Testpatient^${o.site}${k}^Q`;
    const sopInstanceUid = newUid();
    out.push({ bytes: writeCrImage({ rows: 28, columns: 28, pixels, patientName, patientId, sopInstanceUid, window: { center: 127.5, width: 256 } }), sopInstanceUid, label: data.y[i], patientName, patientId });
  }
  return out;
}
