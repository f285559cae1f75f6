import assert from 'node:assert/strict';
import { roundedL2NormBound } from '../../../../shared/privacy/ddgAccountant.js';
import { decodeSum, DEFAULT_ROUNDING_BETA, encodeUpdate } from '../../../../shared/secure/secagg/fixedPoint.js';
import { quantLevels, quantStep } from '../../../../shared/secure/secagg/secaggParams.js';

describe('shared/secure/secagg/fixedPoint (conditional randomised rounding)', () => {
  const bits = 8;
  const range = 1;
  const scale = quantLevels(bits) / range;

  /** A vector of norm `clip` whose coordinates all sit half a step between two integers. */
  function worstCase(d: number, clip: number): Float32Array {
    const x = new Float32Array(d);
    for (let i = 0; i < d; i++) x[i] = ((i % 2 ? 0.5 : -0.5) + (i % 3)) / scale;
    let n = 0;
    for (const v of x) n += v * v;
    const f = (clip / Math.sqrt(n)) * (1 - 1e-6);
    for (let i = 0; i < d; i++) x[i] *= f;
    return x;
  }

  it('never releases a rounded vector above the bound the ledger charges (Δ₂ for the clip and β)', () => {
    const d = 2000;
    const clip = 0.2; // c/γ = 25.4 steps against √d = 44.7: rounding dominates
    const x = worstCase(d, clip);
    for (const beta of [DEFAULT_ROUNDING_BETA, 0.01]) {
      const bound = roundedL2NormBound(clip * scale, d, beta);
      let retried = 0;
      for (let k = 0; k < 200; k++) {
        const enc = encodeUpdate(x, 1, { bits, range, l2Clip: clip, roundingBeta: beta });
        const ints = new Int32Array(enc.words.buffer, 0, d);
        let sq = 0;
        for (const q of ints) sq += q * q;
        assert.ok(Math.sqrt(sq) <= bound, `‖x̃‖ = ${Math.sqrt(sq)} > Δ₂ = ${bound}`);
        if (enc.roundings > 1) retried++;
        assert.equal(new Int32Array(enc.words.buffer)[d], 1);
      }
      // The retries are rare (each rounding fails with probability ≤ β, and far less here).
      assert.ok(retried <= 200 * beta + 3 * Math.sqrt(200 * beta) + 1, `${retried} retried`);
    }
  });

  it('without l2Clip (or with β = 0) rounds once; the deterministic bound (c/γ + √d) holds anyway', () => {
    const d = 500;
    const clip = 0.3;
    const x = worstCase(d, clip);
    for (const p of [{}, { l2Clip: clip, roundingBeta: 0 }]) {
      const enc = encodeUpdate(x, 1, { bits, range, ...p });
      assert.equal(enc.roundings, 1);
      let sq = 0;
      for (const q of new Int32Array(enc.words.buffer, 0, d)) sq += q * q;
      assert.ok(Math.sqrt(sq) <= roundedL2NormBound(clip * scale, d, 0));
    }
  });

  it('stays unbiased, applies the weight after rounding, and refuses a vector longer than its clip', () => {
    const d = 4000;
    const x = new Float32Array(d).fill(0.03 / scale); // 0.03 steps each
    let sum = 0;
    const enc = encodeUpdate(x, 3, { bits, range, l2Clip: 1, noiseStddev: 0 });
    const { weightedSum, totalWeight } = decodeSum(enc.words, { bits, range });
    assert.equal(totalWeight, 3);
    for (const v of weightedSum) sum += v;
    const mean = sum / d / 3;
    assert.ok(Math.abs(mean - x[0]) < 6 * Math.sqrt(0.03 * 0.97 / d) * quantStep(bits, range), `${mean} vs ${x[0]}`);
    assert.throws(() => encodeUpdate(Float32Array.of(0.5, 0.5), 1, { bits, range, l2Clip: 0.5 }), /exceeds the clip 0\.5: clip it before encoding/);
  });
});
