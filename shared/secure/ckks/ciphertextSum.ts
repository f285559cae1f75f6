/**
 * The coordinator's running sum of encrypted updates: each site's bundle is loaded ciphertext by
 * ciphertext (SEAL checks it belongs to the context; we also check level, size and scale, so a
 * ciphertext made with other parameters is refused instead of corrupting the sum) and added in
 * place. Holds no key and never sees a value: adding CKKS ciphertexts is adding their
 * polynomials modulo q.
 */
import type { Ciphertext } from 'node-seal';
import { decodeBundle, encodeBundle } from './ciphertextBundle.js';
import { CkksError } from './ckksErrors.js';
import { sealMessage } from './ckksSecretKey.js';
import { ciphertextCount } from './ckksParams.js';
import { sameParmsId, sealBytes, type CkksContext } from './sealContext.js';

export class CiphertextSum {
  private readonly sum: Ciphertext[] = [];
  private readonly scratch: Ciphertext[] = [];
  /** Sites added so far. */
  count = 0;

  constructor(
    private readonly ctx: CkksContext,
    /** Values per vector (parameters + 1 for the weight). */
    readonly length: number,
  ) {}

  /**
   * Adds one site's bundle. Every ciphertext is checked before any is added, so a refused
   * bundle leaves the sum untouched.
   */
  add(bytes: Uint8Array, site: string): void {
    const { seal, context, lastParmsId, scale } = this.ctx;
    const bundle = decodeBundle(bytes, this.length, `encrypted update of ${site}`);
    const n = ciphertextCount(this.length);
    while (this.scratch.length < n) this.scratch.push(new seal.Ciphertext());
    bundle.ciphertexts.forEach((blob, k) => {
      const c = this.scratch[k];
      try {
        c.loadFromArray(context, sealBytes(blob));
      } catch (err) {
        throw new CkksError(`encrypted update of ${site}: ciphertext ${k} does not load with the federation's CKKS parameters (${sealMessage(err)})`, site);
      }
      if (!sameParmsId(c.parmsId(), lastParmsId)) throw new CkksError(`encrypted update of ${site}: ciphertext ${k} is not at the last level of the modulus chain`, site);
      if (c.size() !== 2) throw new CkksError(`encrypted update of ${site}: ciphertext ${k} has ${c.size()} polynomials, expected 2`, site);
      if (c.scale() !== scale) throw new CkksError(`encrypted update of ${site}: ciphertext ${k} has scale ${c.scale()}, expected 2^40`, site);
    });
    for (let k = 0; k < n; k++) {
      if (this.count === 0) {
        this.sum.push(this.scratch[k]);
        this.scratch[k] = new seal.Ciphertext();
      } else this.ctx.evaluator.addInplace(this.sum[k], this.scratch[k]);
    }
    this.count++;
  }

  /** The encrypted aggregate (full ciphertexts: the sum has no seed to compress c1 with). */
  serialize(): Uint8Array {
    if (this.count === 0) throw new CkksError('no encrypted updates were added');
    const none = this.ctx.seal.ComprModeType.none;
    return encodeBundle({ length: this.length, ciphertexts: this.sum.map((c) => Uint8Array.from(c.saveToArray(none) as Uint8Array)) });
  }

  /** Frees the SEAL memory (WebAssembly heap, not garbage collected). */
  dispose(): void {
    for (const c of [...this.sum, ...this.scratch]) c.delete();
    this.sum.length = 0;
    this.scratch.length = 0;
  }
}
