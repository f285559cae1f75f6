/**
 * The "plain" SecureAggregator half on the coordinator: checks each update's length and that
 * every value is finite, optionally bounds its L2 norm (server-side norm bounding), and either
 * accumulates Σ n_k · Δ_k as updates arrive (streaming, into a float64 buffer reused across
 * rounds; with the WebAssembly SIMD kernel where available, see weightedSumKernel.ts) or — when
 * the round keeps updates — stores each one and sums them in site order at the end, so the same
 * updates give the same bits whatever order they arrived in (and robust rules get every update).
 * Secure aggregation produces the same AggregatedFit without the coordinator seeing any single Δ_k.
 */
import type { AggregatedFit, SiteUpdate } from '../../shared/aggregation/strategy.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import { WeightedSumKernel } from './weightedSumKernel.js';

const BLOCK = 8192;

export interface PlainRoundOptions {
  /** Keep every update until the round closes (robust rules; deterministic summation order). */
  keepUpdates?: boolean;
  /**
   * Scale any update whose L2 norm exceeds the bound down to it: a number, or a multiple of the
   * median norm of the round's updates (the updates are then kept until the round closes).
   */
  normBound?: number | { medianMultiple: number };
}

export class PlainAggregator {
  private size = 0;
  private sum = new Float64Array(0);
  /** For updates not aligned to 4 bytes (made only if one arrives). */
  private scratch = new Float32Array(0);
  /** Streaming rounds sum here (null: no WebAssembly SIMD, the JavaScript loops below). */
  private readonly kernel = WeightedSumKernel.create();
  private onKernel = false;
  private examples = 0;
  private count = 0;
  private kept: (SiteUpdate & { norm: number })[] = [];
  private o: PlainRoundOptions = {};
  /** Updates scaled down by the norm bound in this round. */
  bounded = 0;
  /** The L2 bound this round applied (a relative bound is known once the round closes). */
  appliedBound: number | undefined;

  /** How streaming rounds are summed here: the WebAssembly SIMD kernel or JavaScript loops. */
  get summation(): 'wasm-simd' | 'js' {
    return this.kernel ? 'wasm-simd' : 'js';
  }

  /** Starts a round for vectors of `size` parameters. */
  reset(size: number, options: PlainRoundOptions = {}): void {
    this.size = size;
    this.onKernel = this.kernel !== null && !options.keepUpdates && options.normBound === undefined;
    if (this.onKernel) {
      this.kernel!.reset(size);
      this.sum = new Float64Array(0);
    } else if (this.sum.length !== size) this.sum = new Float64Array(size);
    else this.sum.fill(0);
    this.examples = 0;
    this.count = 0;
    this.kept = [];
    this.bounded = 0;
    this.appliedBound = typeof options.normBound === 'number' ? options.normBound : undefined;
    this.o = options;
  }

  /** A bound relative to the round's median norm: every update is kept and scaled in result(). */
  private get relative(): number | undefined {
    const b = this.o.normBound;
    return typeof b === 'object' ? b.medianMultiple : undefined;
  }

  /**
   * Adds one site's update (little-endian float32 bytes). Throws ProtocolError, leaving the sum
   * untouched, for a wrong length or a non-finite value.
   */
  add(payload: Uint8Array, numExamples: number, site = ''): void {
    const n = this.size;
    if (payload.byteLength !== n * 4) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `update has ${payload.byteLength} bytes; this model needs ${n} float32 values (${n * 4} bytes)`);
    if (this.onKernel) {
      // Checked whole before anything is added: a refused update leaves no trace.
      if (!Number.isFinite(this.kernel!.stage(payload))) throw nonFinite(this.kernel!.staged, 0);
      this.kernel!.accumulate(numExamples);
      this.examples += numExamples;
      this.count++;
      return;
    }
    // Frames put payloads at 4-byte offsets (frameCodec pads headers): view them in place;
    // otherwise copy into an aligned scratch buffer.
    let delta: Float32Array;
    if (payload.byteOffset % 4 === 0) delta = new Float32Array(payload.buffer, payload.byteOffset, n);
    else {
      if (this.scratch.length !== n) this.scratch = new Float32Array(n);
      new Uint8Array(this.scratch.buffer).set(payload);
      delta = this.scratch;
    }
    if (this.o.keepUpdates || this.o.normBound !== undefined) return this.addWhole(delta, numExamples, site);
    // Validate the whole update before touching the sum (a refused update must leave no trace).
    // Checked block by block (each block is then added while still in cache) with one float64
    // sum per block: it is NaN or ±Infinity exactly when some value is (float32 values cannot
    // overflow it). Blocks already added are subtracted again if a later block is bad, which
    // restores the sum to within float64 rounding (far below the float32 model's precision).
    const sum = this.sum;
    const w = numExamples;
    for (let start = 0; start < n; start += BLOCK) {
      const end = Math.min(n, start + BLOCK);
      let check = 0;
      for (let i = start; i < end; i++) check += delta[i];
      if (!Number.isFinite(check)) {
        for (let i = 0; i < start; i++) sum[i] -= w * delta[i];
        throw nonFinite(delta, start);
      }
      for (let i = start; i < end; i++) sum[i] += w * delta[i];
    }
    this.examples += numExamples;
    this.count++;
  }

  /** Two passes (check + norm, then keep or add): used when updates are kept or norm-bounded. */
  private addWhole(delta: Float32Array, numExamples: number, site: string): void {
    let sq = 0;
    for (let i = 0; i < delta.length; i++) sq += delta[i] * delta[i];
    if (!Number.isFinite(sq)) throw nonFinite(delta, 0);
    const norm = Math.sqrt(sq);
    const bound = this.o.normBound;
    const scale = typeof bound === 'number' && norm > bound ? bound / norm : 1;
    if (scale < 1) this.bounded++;
    if (this.o.keepUpdates || this.relative !== undefined) {
      const copy = new Float32Array(delta.length);
      for (let i = 0; i < copy.length; i++) copy[i] = delta[i] * scale;
      this.kept.push({ site, delta: copy, numExamples, norm: norm * scale });
    } else {
      const w = numExamples * scale;
      for (let i = 0; i < delta.length; i++) this.sum[i] += w * delta[i];
    }
    this.examples += numExamples;
    this.count++;
  }

  result(): AggregatedFit {
    if (this.onKernel) return { weightedDeltaSum: this.kernel!.sum, totalExamples: this.examples, sites: this.count };
    const multiple = this.relative;
    if (!this.o.keepUpdates && multiple === undefined) return { weightedDeltaSum: this.sum, totalExamples: this.examples, sites: this.count };
    if (multiple !== undefined) this.boundToMedian(multiple);
    const updates = [...this.kept].sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
    if (!this.o.keepUpdates) {
      for (const u of updates) {
        const w = u.numExamples;
        for (let i = 0; i < this.sum.length; i++) this.sum[i] += w * u.delta[i];
      }
      this.kept = [];
      return { weightedDeltaSum: this.sum, totalExamples: this.examples, sites: this.count };
    }
    for (const u of updates) {
      const w = u.numExamples;
      for (let i = 0; i < this.sum.length; i++) this.sum[i] += w * u.delta[i];
    }
    return { weightedDeltaSum: this.sum, totalExamples: this.examples, sites: this.count, updates };
  }

  /** Scales every kept update whose norm exceeds `multiple` × the median norm down to that bound. */
  private boundToMedian(multiple: number): void {
    if (this.kept.length === 0) return;
    const norms = this.kept.map((u) => u.norm).sort((a, b) => a - b);
    const mid = norms.length >> 1;
    const median = norms.length % 2 ? norms[mid] : (norms[mid - 1] + norms[mid]) / 2;
    const bound = multiple * median;
    this.appliedBound = bound;
    for (const u of this.kept) {
      if (!(u.norm > bound)) continue;
      const scale = bound / u.norm;
      for (let i = 0; i < u.delta.length; i++) u.delta[i] *= scale;
      u.norm = bound;
      this.bounded++;
    }
  }
}

function nonFinite(delta: Float32Array, from: number): ProtocolError {
  let bad = from;
  while (Number.isFinite(delta[bad])) bad++;
  return new ProtocolError(CloseCode.PROTOCOL_ERROR, `update value ${bad} is not finite (${delta[bad]})`);
}
