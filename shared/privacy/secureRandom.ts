/**
 * A fast cryptographically secure random stream: the AES-256-CTR keystream under a fresh random
 * key (node:crypto), produced in 64 KiB blocks into a reused buffer. This is the construction
 * of NIST's CTR_DRBG without reseeding within one stream; a new stream (new key) is made per
 * noise vector. Used for DP noise, never Math.random.
 */
import { createCipheriv, randomBytes } from 'node:crypto';

const BLOCK_BYTES = 64 * 1024;

export class SecureRandomStream {
  private readonly cipher: ReturnType<typeof createCipheriv>;
  private readonly zeros = Buffer.alloc(BLOCK_BYTES);
  private words: Uint32Array = new Uint32Array(0);
  private pos = 0;

  constructor() {
    this.cipher = createCipheriv('aes-256-ctr', randomBytes(32), randomBytes(16));
  }

  /** Next uniformly random 32-bit unsigned integer. */
  nextU32(): number {
    if (this.pos >= this.words.length) this.refill();
    return this.words[this.pos++];
  }

  /** Uniform double in (0, 1) with 53 random bits (never exactly 0 or 1). */
  nextDouble(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo + 0.5) / 9007199254740992;
  }

  /** Uniform integer in [0, n) for 1 <= n <= 2^32, without modulo bias (rejection). */
  nextBelow(n: number): number {
    if (n === 1) return 0;
    const limit = Math.floor(4294967296 / n) * n;
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /**
   * A fresh block of random 32-bit words (for bulk consumers such as the Gaussian sampler, which
   * read the array directly instead of calling nextU32 per word). Consumes the current block.
   */
  nextBlock(): Uint32Array {
    const block = this.cipher.update(this.zeros);
    this.pos = this.words.length; // anything left in the previous block is discarded
    return new Uint32Array(block.buffer, block.byteOffset, block.byteLength >>> 2);
  }

  private refill(): void {
    this.words = this.nextBlock();
    this.pos = 0;
  }
}
