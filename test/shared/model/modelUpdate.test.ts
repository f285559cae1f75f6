import assert from 'node:assert/strict';
import { decodeModelUpdate, encodeModelUpdate, ModelUpdateError, readUpdateHeader } from '../../../shared/model/modelUpdate.js';
import { SeededRng } from '../../../shared/random/seededRng.js';

/** A "trained" successor: small relative steps, some sign flips, plus awkward values. */
function successor(v: Float32Array, seed: number, step = 1e-3): Float32Array {
  const rng = new SeededRng(seed);
  const out = new Float32Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = v[i] + step * rng.normal();
  return out;
}

const bitsEqual = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('model update codec (lossless OTA deltas)', () => {
  const rng = new SeededRng(1);
  const v1 = new Float32Array(50_000).map(() => 0.05 * rng.normal());
  // Values a lossy or float-arithmetic codec would get wrong.
  v1.set([0, -0, NaN, Infinity, -Infinity, 1e-45, -3.4e38, 3.4e38], 0);
  const v2 = successor(v1, 2);
  v2.set([-0, 0, 1, -Infinity, NaN, -1e-45, 3.4e38, -3.4e38], 0);
  const v3 = successor(v2, 3);

  for (const transform of ['sub', 'xor'] as const) {
    for (const codec of ['deflate', 'br'] as const) {
      it(`${transform}/${codec}: v1→v2→v3 and v1→v3 reproduce the exact bytes`, () => {
        const u12 = encodeModelUpdate(v2, v1, { transform, codec, kind: 'delta' });
        const u23 = encodeModelUpdate(v3, v2, { transform, codec, kind: 'delta' });
        const u13 = encodeModelUpdate(v3, v1, { transform, codec, kind: 'delta' });
        const got2 = decodeModelUpdate(u12, v1).params;
        assert.ok(bitsEqual(got2, v2));
        assert.ok(bitsEqual(decodeModelUpdate(u23, got2).params, v3));
        assert.ok(bitsEqual(decodeModelUpdate(u13, v1).params, v3));
      });
    }
  }

  it('a delta between close versions is much smaller than the model; auto picks the smaller form', () => {
    const delta = encodeModelUpdate(v2, v1);
    assert.equal(readUpdateHeader(delta).header.kind, 'delta');
    assert.ok(delta.length < 0.75 * v2.byteLength, `delta ${delta.length} B vs ${v2.byteLength} B raw`);
    // Unrelated "versions": the delta is no smaller than the full model, so auto sends it whole.
    const other = new Float32Array(v1.length).map(() => rng.normal());
    const u = encodeModelUpdate(other, v1);
    assert.equal(readUpdateHeader(u).header.kind, 'full');
    assert.ok(bitsEqual(decodeModelUpdate(u, null).params, other));
  });

  it('refuses a delta without its base, against another base, truncated or corrupted', () => {
    const u = encodeModelUpdate(v2, v1, { kind: 'delta' });
    assert.throws(() => decodeModelUpdate(u, null), (e: Error) => e instanceof ModelUpdateError && /does not hold/.test(e.message));
    assert.throws(() => decodeModelUpdate(u, v3), /not the base model given/);
    assert.throws(() => decodeModelUpdate(u.subarray(0, u.length - 100), v1), /truncated or corrupted/);
    const bad = Buffer.from(u);
    bad[bad.length - 50] ^= 0x40;
    assert.throws(() => decodeModelUpdate(bad, v1), ModelUpdateError);
    assert.throws(() => decodeModelUpdate(Buffer.from('nonsense'), v1), /bad magic/);
    const header = Buffer.from(u);
    header.write('{"format":"x"', 8); // breaks the JSON header
    assert.throws(() => decodeModelUpdate(header, v1), ModelUpdateError);
  });

  it('never inflates beyond the announced size (decompression bomb)', () => {
    const small = new Float32Array(1000);
    const u = encodeModelUpdate(new Float32Array(200_000), null, { kind: 'full' });
    // Re-label a 200k-value body as 1000 values: decoding must stop at 4,000 bytes.
    const { header, bodyOffset } = readUpdateHeader(u);
    const json = Buffer.from(JSON.stringify({ ...header, count: 1000 }));
    const len = Buffer.alloc(4);
    len.writeUInt32LE(json.length);
    const forged = Buffer.concat([u.subarray(0, 4), len, json, u.subarray(bodyOffset)]);
    assert.throws(() => decodeModelUpdate(forged, small), ModelUpdateError);
  });
});
