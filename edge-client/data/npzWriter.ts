/**
 * Writer for .npz archives of .npy arrays (uint8, int32, int64 or float32), compatible with
 * numpy.load. Used for the synthetic demo data and for tests.
 */
import { zipSync } from 'fflate';

export type NpzArray =
  | { dtype: 'u1'; shape: number[]; data: Uint8Array }
  | { dtype: 'i4'; shape: number[]; data: Int32Array }
  | { dtype: 'i8'; shape: number[]; data: BigInt64Array }
  | { dtype: 'f4'; shape: number[]; data: Float32Array };

export function encodeNpy(a: NpzArray): Uint8Array {
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '${a.dtype === 'u1' ? '|u1' : `<${a.dtype}`}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad so that magic(6) + version(2) + length(2) + header + '\n' is a multiple of 64.
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const body = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const out = new Uint8Array(10 + header.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(body, 10 + header.length);
  return out;
}

/** Zips the arrays as NAME.npy entries; `compress` deflates them (np.savez_compressed). */
export function encodeNpz(arrays: Record<string, NpzArray>, compress = true): Uint8Array {
  const files: Record<string, [Uint8Array, { level: 0 | 6 }]> = {};
  for (const [name, a] of Object.entries(arrays)) files[`${name}.npy`] = [encodeNpy(a), { level: compress ? 6 : 0 }];
  return zipSync(files);
}
