/**
 * The plain aggregator's inner loop, Σ n_k · Δ_k into a float64 sum, in WebAssembly SIMD.
 *
 * Checking and adding a 1M-parameter update is the coordinator's largest cost per update: the
 * scalar JavaScript loops (a finite check, then a float32 → float64 multiply-add) take ~2.2 ms
 * alone and 4–5 ms in a busy round; this kernel copies the update into its memory and does both
 * with 128-bit vectors in ~0.7 ms, adding exactly the same float64 values in the same order (the
 * same bits). Source: weightedSumKernel.wat, compiled with wabt and embedded below (a test checks
 * they match). Where WebAssembly SIMD is unavailable, `WeightedSumKernel.create()` returns null
 * and the aggregator keeps its JavaScript loops.
 */

/** weightedSumKernel.wat, compiled (wat2wasm --enable-simd). */
export const WEIGHTED_SUM_WASM_BASE64 =
  'AGFzbQEAAAABDgJgAn9/AXxgBH9/f3wAAwMCAAEFAwEAAQcfAwZtZW1vcnkCAAVjaGVjawAACmFjY3VtdWxhdGUAAQriAgKVAQMBfwJ7AXwgACABQXxxQQJ0aiECAkADQCAAIAJPDQEgAP0ABAAhAyAEIAP9XyADIAP9DQgJCgsMDQ4PAAECAwQFBgf9X/3wAf3wASEEIABBEGohAAwACwsgAiABQQNxQQJ0aiECAkADQCAAIAJPDQEgBSAAKgIAu6AhBSAAQQRqIQAMAAsLIAUgBP0hACAE/SEBoKALyAECAX8EeyAD/RQhBiAAIAJBfHFBAnRqIQQCQANAIAAgBE8NASAA/QAEACEFIAX9XyEHIAUgBf0NCAkKCwwNDg8AAQIDBAUGB/1fIQggASAB/QAEACAGIAf98gH98AH9CwQAIAEgAf0ABBAgBiAI/fIB/fAB/QsEECAAQRBqIQAgAUEgaiEBDAALCyAEIAJBA3FBAnRqIQQCQANAIAAgBE8NASABIAErAwAgAyAAKgIAu6KgOQMAIABBBGohACABQQhqIQEMAAsLCw==';

/** The part of the WebAssembly JS API used here (Node has it; Node's TypeScript types do not declare it). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface KernelExports {
  memory: { buffer: ArrayBuffer; grow(pages: number): number };
  check(d: number, n: number): number;
  accumulate(d: number, s: number, n: number, w: number): void;
}

const PAGE = 65536;

let compiled: object | null | undefined;

export class WeightedSumKernel {
  private size = 0;
  /** Byte offset of the sum (after the staged update, 16-byte aligned). */
  private sumAt = 0;

  private constructor(private readonly k: KernelExports) {}

  /** A kernel instance, or null where this machine's WebAssembly has no SIMD. */
  static create(): WeightedSumKernel | null {
    if (compiled === undefined) {
      try {
        compiled = new wasm.Module(Buffer.from(WEIGHTED_SUM_WASM_BASE64, 'base64'));
      } catch {
        compiled = null;
      }
    }
    return compiled ? new WeightedSumKernel(new wasm.Instance(compiled).exports as KernelExports) : null;
  }

  /** Starts a zero sum of `size` values (growing the kernel's memory when needed). */
  reset(size: number): void {
    const sumAt = Math.ceil((size * 4) / 16) * 16;
    const needed = sumAt + size * 8;
    const memory = this.k.memory;
    if (memory.buffer.byteLength < needed) memory.grow(Math.ceil((needed - memory.buffer.byteLength) / PAGE));
    this.size = size;
    this.sumAt = sumAt;
    this.sum.fill(0);
  }

  /**
   * Copies an update (`size` little-endian float32 values, any alignment) into the kernel and
   * returns the float64 sum of its values: NaN or ±Infinity exactly when some value is.
   */
  stage(update: Uint8Array): number {
    new Uint8Array(this.k.memory.buffer, 0, this.size * 4).set(update);
    return this.k.check(0, this.size);
  }

  /** The staged update as float32 values (to name a bad one). */
  get staged(): Float32Array {
    return new Float32Array(this.k.memory.buffer, 0, this.size);
  }

  /** sum += weight × the staged update. */
  accumulate(weight: number): void {
    this.k.accumulate(0, this.sumAt, this.size, weight);
  }

  /** The sum: a view of the kernel's memory, valid until the next reset. */
  get sum(): Float64Array {
    return new Float64Array(this.k.memory.buffer, this.sumAt, this.size);
  }
}
