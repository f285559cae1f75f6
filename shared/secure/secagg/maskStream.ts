/**
 * The SecAgg+ pseudo-random generator: the AES-256-CTR keystream of a 256-bit key, read as
 * uint32 words and added to (or subtracted from) a vector in place, mod 2^32. The keystream is
 * produced in 64 KiB chunks (one `update` per chunk is ~4× faster than one huge call) straight
 * into the accumulator, so a mask is never materialised. Each key is used for one vector only
 * (keys are derived per session), so the all-zero IV is safe.
 */
import { createCipheriv } from 'node:crypto';

const CHUNK_BYTES = 64 * 1024;
const ZEROS = Buffer.alloc(CHUNK_BYTES);
const IV = Buffer.alloc(16);

/** acc ← acc + sign · PRG(key) (mod 2^32), over acc's whole length. */
export function applyMask(acc: Uint32Array, key: Uint8Array, sign: 1 | -1): void {
  const cipher = createCipheriv('aes-256-ctr', key, IV);
  const n = acc.length;
  for (let start = 0; start < n; start += CHUNK_BYTES / 4) {
    const count = Math.min(CHUNK_BYTES / 4, n - start);
    const bytes = cipher.update(count === CHUNK_BYTES / 4 ? ZEROS : ZEROS.subarray(0, count * 4));
    const ks = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count) : new Uint32Array(Uint8Array.from(bytes).buffer);
    // Uint32Array stores wrap mod 2^32, which is exactly the group operation.
    if (sign === 1) for (let i = 0; i < count; i++) acc[start + i] += ks[i];
    else for (let i = 0; i < count; i++) acc[start + i] -= ks[i];
  }
}

/** acc ← acc + v (mod 2^32). */
export function addInto(acc: Uint32Array, v: Uint32Array): void {
  for (let i = 0; i < acc.length; i++) acc[i] += v[i];
}
