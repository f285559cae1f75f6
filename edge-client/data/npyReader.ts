/**
 * Reader for NumPy .npy arrays (format versions 1.0-3.0), as stored inside .npz files.
 * Supports little-endian numeric dtypes and bool, C order. Every size is checked against the
 * bytes present before anything is allocated.
 */
import { DataFormatError } from '../../shared/errors.js';

export type NpyDtype = 'u1' | 'i1' | 'u2' | 'i2' | 'u4' | 'i4' | 'i8' | 'u8' | 'f4' | 'f8' | 'b1';

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** Values widened to float64 (exact for every supported dtype except 64-bit ints above 2^53). */
  data: Float64Array | Uint8Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const ITEM_SIZE: Record<NpyDtype, number> = { u1: 1, i1: 1, b1: 1, u2: 2, i2: 2, u4: 4, i4: 4, f4: 4, u8: 8, i8: 8, f8: 8 };

export function readNpy(bytes: Uint8Array, source: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw new DataFormatError(`${source}: not a .npy array (bad magic)`);
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new DataFormatError(`${source}: truncated .npy header`);
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw new DataFormatError(`${source}: unsupported .npy format version ${major}`);
  }
  if (headerStart + headerLen > bytes.length) throw new DataFormatError(`${source}: truncated .npy header`);
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLen).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new DataFormatError(`${source}: malformed .npy header: ${header.trim()}`);
  if (fortran === 'True') throw new DataFormatError(`${source}: Fortran-ordered arrays are not supported; save with C order`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw new DataFormatError(`${source}: bad shape (${shapeText})`);
  const endian = descr[0];
  const dtype = descr.slice(1) as NpyDtype;
  if (!(dtype in ITEM_SIZE)) throw new DataFormatError(`${source}: unsupported dtype "${descr}" (need an integer, float or bool array)`);
  if (endian === '>' && ITEM_SIZE[dtype] > 1) throw new DataFormatError(`${source}: big-endian arrays are not supported`);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const need = count * ITEM_SIZE[dtype];
  if (bytes.length - dataStart !== need) throw new DataFormatError(`${source}: shape (${shape.join(', ')}) of ${descr} needs ${need} bytes but ${bytes.length - dataStart} are present`);
  const raw = bytes.subarray(dataStart);
  if (dtype === 'u1' || dtype === 'b1') return { dtype, shape, data: new Uint8Array(raw) };
  const out = new Float64Array(count);
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const sz = ITEM_SIZE[dtype];
  for (let i = 0; i < count; i++) {
    const o = i * sz;
    switch (dtype) {
      case 'i1': out[i] = dv.getInt8(o); break;
      case 'u2': out[i] = dv.getUint16(o, true); break;
      case 'i2': out[i] = dv.getInt16(o, true); break;
      case 'u4': out[i] = dv.getUint32(o, true); break;
      case 'i4': out[i] = dv.getInt32(o, true); break;
      case 'f4': out[i] = dv.getFloat32(o, true); break;
      case 'f8': out[i] = dv.getFloat64(o, true); break;
      case 'i8': out[i] = Number(dv.getBigInt64(o, true)); break;
      case 'u8': out[i] = Number(dv.getBigUint64(o, true)); break;
    }
  }
  return { dtype, shape, data: out };
}
