/**
 * The "plain" SecureAggregator half on the coordinator: accumulates Σ n_k · Δ_k as updates
 * arrive (streaming, into a float64 buffer reused across rounds), after checking each update's
 * length and that every value is finite. Secure aggregation (SecAgg+/CKKS) will produce the same
 * AggregatedFit without the coordinator seeing any single Δ_k.
 */
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';

const BLOCK = 8192;

export class PlainAggregator {
  private sum = new Float64Array(0);
  private scratch = new Float32Array(0);
  private examples = 0;
  private count = 0;

  /** Starts a round for vectors of `size` parameters. */
  reset(size: number): void {
    if (this.sum.length !== size) {
      this.sum = new Float64Array(size);
      this.scratch = new Float32Array(size);
    } else this.sum.fill(0);
    this.examples = 0;
    this.count = 0;
  }

  /**
   * Adds one site's update (little-endian float32 bytes). Throws ProtocolError, leaving the sum
   * untouched, for a wrong length or a non-finite value.
   */
  add(payload: Uint8Array, numExamples: number): void {
    const n = this.sum.length;
    if (payload.byteLength !== n * 4) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `update has ${payload.byteLength} bytes; this model needs ${n} float32 values (${n * 4} bytes)`);
    // Frames put payloads at 4-byte offsets (frameCodec pads headers): view them in place;
    // otherwise copy into an aligned scratch buffer.
    let delta: Float32Array;
    if (payload.byteOffset % 4 === 0) delta = new Float32Array(payload.buffer, payload.byteOffset, n);
    else {
      new Uint8Array(this.scratch.buffer).set(payload);
      delta = this.scratch;
    }
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
        let bad = start;
        while (Number.isFinite(delta[bad])) bad++;
        throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `update value ${bad} is not finite (${delta[bad]})`);
      }
      for (let i = start; i < end; i++) sum[i] += w * delta[i];
    }
    this.examples += numExamples;
    this.count++;
  }

  result(): AggregatedFit {
    return { weightedDeltaSum: this.sum, totalExamples: this.examples, sites: this.count };
  }
}
