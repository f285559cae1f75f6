/**
 * The wire and storage form of an encrypted vector: `FMCK` | u8 version | 3 reserved bytes |
 * u32 values | u32 ciphertexts | per ciphertext: u32 length | SEAL-serialised bytes. Every
 * length is checked against the buffer and the limits before anything is allocated.
 */
import { ciphertextCount } from './ckksParams.js';
import { CkksError } from './ckksErrors.js';

const MAGIC = 0x4b434d46; // 'FMCK' little-endian
const VERSION = 1;
const HEADER = 16;
/** A full two-polynomial ciphertext at N = 8192 with all four primes is 512 KiB; none may be larger. */
export const MAX_CIPHERTEXT_BYTES = 600 * 1024;

export interface CiphertextBundle {
  /** Number of values encrypted (the last ciphertext is zero-padded). */
  length: number;
  ciphertexts: Uint8Array[];
}

export function encodeBundle(b: CiphertextBundle): Uint8Array {
  const total = HEADER + b.ciphertexts.reduce((n, c) => n + 4 + c.byteLength, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  out[4] = VERSION;
  view.setUint32(8, b.length, true);
  view.setUint32(12, b.ciphertexts.length, true);
  let at = HEADER;
  for (const c of b.ciphertexts) {
    view.setUint32(at, c.byteLength, true);
    out.set(c, at + 4);
    at += 4 + c.byteLength;
  }
  return out;
}

/** Splits a bundle (views into `bytes`, no copies); `length` is the number of values expected. */
export function decodeBundle(bytes: Uint8Array, length: number, what = 'encrypted vector'): CiphertextBundle {
  if (bytes.byteLength < HEADER) throw new CkksError(`${what}: ${bytes.byteLength} bytes is shorter than its header`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) throw new CkksError(`${what}: not a fedmed ciphertext bundle (bad magic)`);
  if (bytes[4] !== VERSION) throw new CkksError(`${what}: bundle version ${bytes[4]} is not supported (expected ${VERSION})`);
  const values = view.getUint32(8, true);
  const count = view.getUint32(12, true);
  if (values !== length) throw new CkksError(`${what} holds ${values} values; this experiment needs ${length}`);
  if (count !== ciphertextCount(length)) throw new CkksError(`${what} has ${count} ciphertexts; ${length} values need ${ciphertextCount(length)}`);
  const ciphertexts: Uint8Array[] = [];
  let at = HEADER;
  for (let i = 0; i < count; i++) {
    if (at + 4 > bytes.byteLength) throw new CkksError(`${what} is truncated (ciphertext ${i} of ${count} missing)`);
    const n = view.getUint32(at, true);
    if (n < 1 || n > MAX_CIPHERTEXT_BYTES) throw new CkksError(`${what}: ciphertext ${i} claims ${n} bytes (limit ${MAX_CIPHERTEXT_BYTES})`);
    if (at + 4 + n > bytes.byteLength) throw new CkksError(`${what} is truncated inside ciphertext ${i} of ${count}`);
    ciphertexts.push(bytes.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  if (at !== bytes.byteLength) throw new CkksError(`${what} has ${bytes.byteLength - at} bytes after its last ciphertext`);
  return { length, ciphertexts };
}
