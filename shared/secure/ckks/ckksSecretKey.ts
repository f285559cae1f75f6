/**
 * A site's CKKS secret key and what it does with it: encrypt its (clipped, weighted) update at
 * the last level with seed compression, and decrypt an aggregate. Only sites (and the admin who
 * generated the key set) ever hold one; the coordinator never does.
 */
import type { Decryptor, Encryptor, SecretKey } from 'node-seal';
import { ckksContext, sameParmsId, sealBytes, type CkksContext } from './sealContext.js';
import { decodeBundle, encodeBundle } from './ciphertextBundle.js';
import { CkksError } from './ckksErrors.js';
import { ciphertextCount } from './ckksParams.js';

export class CkksSecretKey {
  private readonly encryptor: Encryptor;
  private readonly decryptor: Decryptor;

  private constructor(
    private readonly ctx: CkksContext,
    private readonly key: SecretKey,
  ) {
    // SEAL's Encryptor wants a valid public key too (derived from the secret key); fedmed only
    // uses secret-key encryption, whose ciphertexts serialise seed-compressed.
    const kg = new ctx.seal.KeyGenerator(ctx.context, key);
    const pk = kg.createPublicKey();
    this.encryptor = new ctx.seal.Encryptor(ctx.context, pk, key);
    pk.delete();
    kg.delete();
    this.decryptor = new ctx.seal.Decryptor(ctx.context, key);
  }

  /** A fresh key set's secret key (the admin's `fedmed federation keys create`). */
  static async generate(): Promise<{ key: CkksSecretKey; bytes: Uint8Array }> {
    const ctx = await ckksContext();
    const kg = new ctx.seal.KeyGenerator(ctx.context);
    const sk = kg.secretKey();
    kg.delete();
    return { key: new CkksSecretKey(ctx, sk), bytes: Uint8Array.from(sk.saveToArray(ctx.seal.ComprModeType.zstd) as Uint8Array) };
  }

  /** Loads a serialised secret key; SEAL checks it belongs to fedmed's parameters. */
  static async load(bytes: Uint8Array): Promise<CkksSecretKey> {
    const ctx = await ckksContext();
    const sk = new ctx.seal.SecretKey();
    try {
      sk.loadFromArray(ctx.context, sealBytes(bytes));
    } catch (err) {
      sk.delete();
      throw new CkksError(`the CKKS secret key does not load with fedmed's parameters (${sealMessage(err)})`);
    }
    return new CkksSecretKey(ctx, sk);
  }

  /**
   * Encrypts `values` (any length). The caller has already weighted and clipped them. Each
   * ciphertext is encoded at full level, switched down to the last level, encrypted with the
   * secret key and serialised seed-compressed.
   */
  encrypt(values: ArrayLike<number>): Uint8Array {
    const { seal, encoder, evaluator, lastParmsId, scale, slots } = this.ctx;
    const count = ciphertextCount(values.length);
    const block = new Float64Array(slots);
    const plain = new seal.Plaintext();
    const ciphertexts: Uint8Array[] = [];
    try {
      for (let k = 0; k < count; k++) {
        const start = k * slots;
        const end = Math.min(values.length, start + slots);
        block.fill(0);
        for (let i = start; i < end; i++) block[i - start] = values[i];
        encoder.encode(block, scale, plain);
        evaluator.plainModSwitchToInplace(plain, lastParmsId);
        const s = this.encryptor.encryptSymmetricSerializable(plain);
        ciphertexts.push(Uint8Array.from(s.saveToArray(seal.ComprModeType.none) as Uint8Array));
        s.delete();
      }
    } finally {
      plain.delete();
    }
    return encodeBundle({ length: values.length, ciphertexts });
  }

  /** Decrypts a bundle of `length` values (an aggregate, or a site's own update in tests). */
  decrypt(bytes: Uint8Array, length: number, what = 'encrypted aggregate'): Float64Array {
    const { seal, context, encoder, lastParmsId, slots } = this.ctx;
    const bundle = decodeBundle(bytes, length, what);
    const out = new Float64Array(length);
    const c = new seal.Ciphertext();
    const plain = new seal.Plaintext();
    try {
      bundle.ciphertexts.forEach((blob, k) => {
        try {
          c.loadFromArray(context, sealBytes(blob));
        } catch (err) {
          throw new CkksError(`${what}: ciphertext ${k} does not load (${sealMessage(err)})`);
        }
        if (!sameParmsId(c.parmsId(), lastParmsId)) throw new CkksError(`${what}: ciphertext ${k} is not at the expected level`);
        this.decryptor.decrypt(c, plain);
        const decoded = encoder.decodeFloat64(plain) as Float64Array;
        const start = k * slots;
        const end = Math.min(length, start + slots);
        out.set(decoded.subarray(0, end - start), start);
      });
    } finally {
      c.delete();
      plain.delete();
    }
    return out;
  }

  dispose(): void {
    this.encryptor.delete();
    this.decryptor.delete();
    this.key.delete();
  }
}

/** SEAL throws WebAssembly.Exceptions whose `message` is [C++ type, what()], or Errors. */
export function sealMessage(err: unknown): string {
  const m = (err as { message?: unknown })?.message;
  if (Array.isArray(m)) return m.join(': ');
  return typeof m === 'string' ? m : `SEAL error ${String(err)}`;
}
