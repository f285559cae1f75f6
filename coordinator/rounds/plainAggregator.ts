/**
 * The "plain" SecureAggregator half on the coordinator: accumulates Σ n_k · Δ_k as updates
 * arrive (streaming, into a float64 buffer reused across rounds), after checking each update's
 * length and that every value is finite. Secure aggregation (SecAgg+/CKKS) will produce the same
 * AggregatedFit without the coordinator seeing any single Δ_k.
 */
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';

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
    // Copy into an aligned buffer (the payload sits at an arbitrary offset in the frame).
    new Uint8Array(this.scratch.buffer).set(payload);
    const delta = this.scratch;
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(delta[i])) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `update value ${i} is not finite (${delta[i]})`);
    }
    const sum = this.sum;
    for (let i = 0; i < n; i++) sum[i] += numExamples * delta[i];
    this.examples += numExamples;
    this.count++;
  }

  result(): AggregatedFit {
    return { weightedDeltaSum: this.sum, totalExamples: this.examples, sites: this.count };
  }
}
