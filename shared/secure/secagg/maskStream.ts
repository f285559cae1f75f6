/**
 * The SecAgg+ pseudo-random generator: the AES-256-CTR keystream of a 256-bit key, read as
 * uint32 words and added to (or subtracted from) a vector in place, mod 2^32. Keystreams are
 * produced in 256 KiB chunks (one `update` per chunk beats one huge call) straight
 * into the accumulator, so a mask is never materialised; with several keys, all of them are
 * applied to one chunk of the vector before moving on, while it is still in cache. Each key is
 * used for one vector only (keys are derived per session), so the all-zero IV is safe.
 */
import { createCipheriv } from 'node:crypto';

const CHUNK_WORDS = 64 * 1024; // 256 KiB: measured fastest here (16 KiB 4.3, 64 KiB 3.8, 256 KiB 3.3 ms per 1M-word mask)
const ZEROS = Buffer.alloc(CHUNK_WORDS * 4);
const IV = Buffer.alloc(16);

export interface Mask {
  key: Uint8Array;
  sign: 1 | -1;
}

/** The CTR counter block where word `offset` of a keystream starts (offset a multiple of 4). */
function counterAt(offset: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(Math.floor(offset / 4 / 2 ** 32), 8);
  iv.writeUInt32BE((offset / 4) % 2 ** 32, 12);
  return iv;
}

/**
 * acc ← acc + Σ sign · PRG(key) (mod 2^32). `acc` holds words [offset, offset + acc.length) of
 * the full vector (offset a multiple of 4: AES-CTR seeks there by its counter), so a vector can
 * be split between threads that each mask their own slice.
 */
export function applyMasks(acc: Uint32Array, masks: readonly Mask[], offset = 0): void {
  if (offset % 4 !== 0) throw new RangeError(`mask offset ${offset} must be a multiple of 4 words`);
  const iv = offset === 0 ? IV : counterAt(offset);
  const ciphers = masks.map((m) => createCipheriv('aes-256-ctr', m.key, iv));
  const n = acc.length;
  for (let start = 0; start < n; start += CHUNK_WORDS) {
    const count = Math.min(CHUNK_WORDS, n - start);
    const zeros = count === CHUNK_WORDS ? ZEROS : ZEROS.subarray(0, count * 4);
    const chunk = acc.subarray(start, start + count);
    for (let k = 0; k < ciphers.length; k++) {
      const bytes = ciphers[k].update(zeros);
      const ks = bytes.byteOffset % 4 === 0 ? new Uint32Array(bytes.buffer, bytes.byteOffset, count) : new Uint32Array(new Uint8Array(bytes).buffer); // (copy only if unaligned)
      // Uint32Array stores wrap mod 2^32, which is exactly the group operation.
      if (masks[k].sign === 1) for (let i = 0; i < count; i++) chunk[i] += ks[i];
      else for (let i = 0; i < count; i++) chunk[i] -= ks[i];
    }
  }
}

/** acc ← acc + sign · PRG(key) (mod 2^32). */
export function applyMask(acc: Uint32Array, key: Uint8Array, sign: 1 | -1): void {
  applyMasks(acc, [{ key, sign }]);
}
