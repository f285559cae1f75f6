import assert from 'node:assert/strict';
import { computeEpsilon, DEFAULT_ORDERS, noiseForEpsilon, RdpAccountant, rdpSubsampledGaussian } from '../../../shared/privacy/rdpAccountant.js';
import { PrivacyParameterError } from '../../../shared/privacy/privacyErrors.js';

/**
 * Independent evaluation of the subsampled Gaussian's RDP by numeric integration:
 * A_α = E_{x ~ N(0,σ²)} [ ((1−q) + q·exp((2x−1)/(2σ²)))^α ], RDP = log A_α / (α−1).
 * Integrated in the log domain with the trapezoid rule on a fine grid wide enough for the peak.
 */
function rdpByIntegration(q: number, sigma: number, alpha: number): number {
  const lo = -12 * sigma;
  const hi = 12 * sigma + alpha + 2;
  const steps = 400_000;
  const h = (hi - lo) / steps;
  const logTerms: number[] = [];
  let max = -Infinity;
  for (let k = 0; k <= steps; k++) {
    const x = lo + k * h;
    const logDensity = (-x * x) / (2 * sigma * sigma) - Math.log(sigma * Math.sqrt(2 * Math.PI));
    const e = (2 * x - 1) / (2 * sigma * sigma);
    const logRatio = e > 0 ? e + Math.log(q + (1 - q) * Math.exp(-e)) : Math.log(1 - q + q * Math.exp(e));
    const t = logDensity + alpha * logRatio + (k === 0 || k === steps ? Math.log(0.5) : 0);
    logTerms.push(t);
    if (t > max) max = t;
  }
  let sum = 0;
  for (const t of logTerms) sum += Math.exp(t - max);
  return (max + Math.log(sum * h)) / (alpha - 1);
}

describe('shared/privacy/rdpAccountant', () => {
  it('matches numeric integration of the Rényi divergence at integer and fractional orders', () => {
    for (const [q, sigma, alpha] of [
      [0.01, 1.0, 2.5],
      [0.1, 2.0, 8],
      [0.05, 0.8, 3.7],
      [0.3, 1.5, 16],
      [0.02, 4.0, 1.6],
    ]) {
      const [exact] = rdpSubsampledGaussian(q, sigma, [alpha]);
      const numeric = rdpByIntegration(q, sigma, alpha);
      assert.ok(Math.abs(exact / numeric - 1) < 1e-4, `q=${q} σ=${sigma} α=${alpha}: ${exact} vs ${numeric}`);
    }
  });

  it('reproduces published values', () => {
    // Abadi et al. 2016 setting: q = 0.01, z = 4, T = 10,000, δ = 1e-5.
    const abadi = { noiseMultiplier: 4, samplingRate: 0.01, steps: 10_000, delta: 1e-5 };
    const classic = computeEpsilon(abadi, 'classic').epsilon;
    const tight = computeEpsilon(abadi).epsilon;
    assert.ok(Math.abs(classic - 1.26) / 1.26 < 0.005, `classic ${classic}`);
    assert.ok(Math.abs(tight - 1.04) / 1.04 < 0.01, `tight ${tight}`);
    // TensorFlow Privacy's MNIST tutorial: batch 256 of 60,000, z = 1.1, 60 epochs -> ε = 3.01 (classic conversion).
    const tutorial = computeEpsilon({ noiseMultiplier: 1.1, samplingRate: 256 / 60000, steps: Math.floor((60 * 60000) / 256), delta: 1e-5 }, 'classic').epsilon;
    assert.ok(Math.abs(tutorial - 3.01) / 3.01 < 0.005, `tutorial ${tutorial}`);
  });

  it('q = 1 is the plain Gaussian mechanism: α / (2z²)', () => {
    const r = rdpSubsampledGaussian(1, 2, [2, 7.5]);
    assert.deepEqual([...r], [2 / 8, 7.5 / 8]);
  });

  it('composes heterogeneous rounds additively, 10^5 steps quickly', () => {
    const acc = new RdpAccountant().compose(0.1, 1.5, 3).compose(0.2, 2, 2);
    const a = rdpSubsampledGaussian(0.1, 1.5);
    const b = rdpSubsampledGaussian(0.2, 2);
    acc.rdp.forEach((v, k) => assert.ok(Math.abs(v - (3 * a[k] + 2 * b[k])) < 1e-9));
    const t0 = performance.now();
    const many = new RdpAccountant();
    for (let i = 0; i < 100_000; i++) many.compose(0.01, 1.1);
    many.epsilon(1e-5);
    assert.ok(performance.now() - t0 < 5000); // functional bound only; speed is benchmarked, not tested
    assert.equal(DEFAULT_ORDERS.length, 156);
  });

  it('the inverse finds the smallest noise multiplier for a target ε', () => {
    const p = { samplingRate: 0.01, steps: 10_000, delta: 1e-5 };
    const z = noiseForEpsilon({ targetEpsilon: 1.04, ...p });
    assert.ok(computeEpsilon({ noiseMultiplier: z, ...p }).epsilon <= 1.04);
    assert.ok(computeEpsilon({ noiseMultiplier: z * 0.999, ...p }).epsilon > 1.04);
    assert.ok(Math.abs(z - 4) < 0.05, `z ${z}`);
  });

  it('refuses invalid parameters with a clear error', () => {
    assert.throws(() => rdpSubsampledGaussian(0, 1), PrivacyParameterError);
    assert.throws(() => rdpSubsampledGaussian(1.5, 1), /sampling rate q must be in \(0, 1\]/);
    assert.throws(() => rdpSubsampledGaussian(0.1, 0), /noise multiplier z must be/);
    assert.throws(() => computeEpsilon({ noiseMultiplier: 1, samplingRate: 0.1, steps: 10, delta: 1 }), /delta must be in \(0, 1\)/);
    assert.throws(() => new RdpAccountant().compose(0.1, 1, -1), /steps must be/);
    assert.throws(() => noiseForEpsilon({ targetEpsilon: -1, samplingRate: 0.1, steps: 10, delta: 1e-5 }), /target epsilon/);
  });
});
