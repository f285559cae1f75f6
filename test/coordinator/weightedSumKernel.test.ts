import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import wabtInit from 'wabt';
import { PlainAggregator } from '../../coordinator/rounds/plainAggregator.js';
import { WEIGHTED_SUM_WASM_BASE64, WeightedSumKernel } from '../../coordinator/rounds/weightedSumKernel.js';
import { ProtocolError } from '../../shared/protocol/protocolError.js';
import { SeededRng } from '../../shared/random/seededRng.js';
import { PROJECT_ROOT } from '../helpers/paths.js';

/** The same sum with the JavaScript loop the kernel replaces. */
function jsSum(updates: { delta: Float32Array; n: number }[], size: number): Float64Array {
  const sum = new Float64Array(size);
  for (const u of updates) for (let i = 0; i < size; i++) sum[i] += u.n * u.delta[i];
  return sum;
}

function bytesOf(delta: Float32Array, misalign = 0): Uint8Array {
  const buf = new Uint8Array(delta.byteLength + misalign);
  buf.set(new Uint8Array(delta.buffer, delta.byteOffset, delta.byteLength), misalign);
  return buf.subarray(misalign);
}

describe('coordinator: the weighted-sum kernel (WebAssembly SIMD)', () => {
  it('the embedded module is weightedSumKernel.wat compiled', async () => {
    const wabt = await wabtInit();
    const source = readFileSync(join(PROJECT_ROOT, 'coordinator/rounds/weightedSumKernel.wat'), 'utf8');
    const module = wabt.parseWat('weightedSumKernel.wat', source, { simd: true });
    const { buffer } = module.toBinary({});
    module.destroy();
    assert.equal(Buffer.from(buffer).toString('base64'), WEIGHTED_SUM_WASM_BASE64, 'regenerate WEIGHTED_SUM_WASM_BASE64 from the .wat (wabt parseWat + toBinary)');
  });

  it('adds the same float64 bits as the JavaScript loop, for any length and alignment', () => {
    const kernel = WeightedSumKernel.create();
    assert.ok(kernel, 'Node 22 on x64 has WebAssembly SIMD');
    const rng = new SeededRng(11);
    for (const size of [1, 3, 4, 5, 1001, 65_539]) {
      const updates = Array.from({ length: 4 }, (_, k) => ({ delta: Float32Array.from({ length: size }, () => rng.normal() * 10 ** (rng.int(12) - 6)), n: 1 + rng.int(5000) + k }));
      kernel.reset(size);
      for (const [k, u] of updates.entries()) {
        assert.ok(Number.isFinite(kernel.stage(bytesOf(u.delta, k % 4))));
        kernel.accumulate(u.n);
      }
      assert.deepEqual(kernel.sum, jsSum(updates, size), `size ${size}`);
    }
  });

  it('the check is non-finite exactly when a value is, wherever it is (vector lanes and the tail)', () => {
    const kernel = WeightedSumKernel.create()!;
    const size = 23; // 5 vectors of 4 and a tail of 3
    kernel.reset(size);
    const ok = Float32Array.from({ length: size }, (_, i) => (i % 2 ? -3.4e38 : 3.4e38)); // huge but finite
    assert.ok(Number.isFinite(kernel.stage(bytesOf(ok))));
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      for (const at of [0, 5, 19, 20, 22]) {
        const d = Float32Array.from(ok);
        d[at] = bad;
        assert.ok(!Number.isFinite(kernel.stage(bytesOf(d))), `${bad} at ${at}`);
      }
    }
  });

  it('the aggregator on the kernel refuses a bad update leaving the sum untouched, and grows for a bigger model', async () => {
    const agg = new PlainAggregator();
    assert.equal(agg.summation, 'wasm-simd');
    const rng = new SeededRng(2);
    const good = Float32Array.from({ length: 10 }, () => rng.normal());
    agg.reset(10);
    agg.add(bytesOf(good), 7);
    const bad = Float32Array.from(good);
    bad[9] = Number.NaN;
    assert.throws(() => agg.add(bytesOf(bad, 1), 3), (e: unknown) => e instanceof ProtocolError && /value 9 is not finite/.test(e.message));
    const r = await agg.result();
    assert.deepEqual(r.weightedDeltaSum, jsSum([{ delta: good, n: 7 }], 10));
    assert.equal(r.totalExamples, 7);
    const big = 300_001; // past the kernel's first memory page: it grows
    const u = Float32Array.from({ length: big }, () => rng.normal());
    agg.reset(big);
    agg.add(bytesOf(u), 2);
    assert.deepEqual((await agg.result()).weightedDeltaSum, jsSum([{ delta: u, n: 2 }], big));
  });
});
