/**
 * Reader for NumPy .npz archives (zip files of .npy arrays, stored or deflated), via fflate.
 */
import { unzipSync } from 'fflate';
import { DataFormatError } from '../../shared/errors.js';
import { readNpy, type NpyArray } from './npyReader.js';

export function readNpz(bytes: Uint8Array, source: string): Map<string, NpyArray> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes);
  } catch (err) {
    throw new DataFormatError(`${source}: not a readable .npz (zip) archive: ${(err as Error).message}`);
  }
  const arrays = new Map<string, NpyArray>();
  for (const [name, content] of Object.entries(entries)) {
    if (!name.endsWith('.npy')) continue;
    const key = name.slice(0, -4);
    arrays.set(key, readNpy(content, `${source}:${name}`));
  }
  if (arrays.size === 0) throw new DataFormatError(`${source}: the archive holds no .npy arrays`);
  return arrays;
}
