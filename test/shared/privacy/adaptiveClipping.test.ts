import assert from 'node:assert/strict';
import { defaultCountStddev, nextClip, updateNoiseMultiplier } from '../../../shared/privacy/adaptiveClipping.js';
import { PrivacyParameterError } from '../../../shared/privacy/privacyErrors.js';

describe('shared/privacy/adaptiveClipping (Andrew et al. 2021)', () => {
  it('splits the noise budget: z⁻² = z_Δ⁻² + (2σ_b)⁻²', () => {
    const z = 1.2;
    const zd = updateNoiseMultiplier(z, 3);
    assert.ok(Math.abs(zd ** -2 + 6 ** -2 - z ** -2) < 1e-12);
    assert.ok(zd > z);
    assert.throws(() => updateNoiseMultiplier(2, 1), PrivacyParameterError);
    assert.ok(2 * defaultCountStddev(10, 2) > 2);
  });

  it('moves the clip geometrically towards the target quantile', () => {
    assert.equal(nextClip(1, 0.5, { targetQuantile: 0.5 }), 1);
    assert.ok(nextClip(1, 1, {}) < 1); // everything fitted: shrink
    assert.ok(nextClip(1, 0, {}) > 1); // everything clipped: grow
    assert.ok(Math.abs(nextClip(2, 0.9, { targetQuantile: 0.5, learningRate: 0.2 }) - 2 * Math.exp(-0.08)) < 1e-12);
    // Iterating on a fixed set of norms converges near their median.
    const norms = [0.5, 1, 2, 4, 8];
    let c = 100;
    for (let r = 0; r < 200; r++) c = nextClip(c, norms.filter((n) => n <= c).length / norms.length, { learningRate: 0.2 });
    assert.ok(c > 1 && c < 4.5, `clip ${c}`);
  });
});
