import assert from 'node:assert/strict';
import { clipToNorm, l2Norm } from '../../../shared/privacy/clipping.js';
import { DiscreteGaussianSampler } from '../../../shared/privacy/discreteGaussian.js';
import { addGaussianNoise, fillGaussian } from '../../../shared/privacy/gaussianNoise.js';
import { PrivacyParameterError } from '../../../shared/privacy/privacyErrors.js';
import { logErfc } from '../../../shared/privacy/specialFunctions.js';

/** Standard normal CDF via our own log-erfc (checked separately below). */
const phi = (z: number): number => (z < 0 ? 0.5 * Math.exp(logErfc(-z / Math.SQRT2)) : 1 - 0.5 * Math.exp(logErfc(z / Math.SQRT2)));

// Bounds below are fixed (they do not depend on the random seed, which is fresh each run) and
// chosen so that a correct sampler fails them with probability < 1e-6.
describe('shared/privacy: samplers and clipping', () => {
  it('erfc in the log domain matches reference values, including where erfc underflows', () => {
    assert.ok(Math.abs(Math.exp(logErfc(0.5)) - 0.4795001221869535) < 1e-15);
    assert.ok(Math.abs(Math.exp(logErfc(3)) / 2.209049699858544e-5 - 1) < 1e-12);
    assert.ok(Math.abs(Math.exp(logErfc(-1)) - 1.8427007929497148) < 1e-14);
    // erfc(30) underflows doubles' comfort zone; asymptotic: -x² - log(x√π) - 1/(2x²) + ...
    const x = 30;
    const asym = -x * x - Math.log(x * Math.sqrt(Math.PI)) - 1 / (2 * x * x) + 5 / (8 * x ** 4) - 37 / (24 * x ** 6) + 353 / (64 * x ** 8);
    assert.ok(Math.abs(logErfc(x) - asym) < 1e-9);
  });

  it('continuous Gaussian: mean, variance and Kolmogorov–Smirnov within fixed bounds (n = 200,000)', () => {
    const n = 200_000;
    const sigma = 2.5;
    const x = new Float64Array(n);
    fillGaussian(x, sigma);
    let mean = 0;
    for (const v of x) mean += v;
    mean /= n;
    let variance = 0;
    for (const v of x) variance += (v - mean) ** 2;
    variance /= n;
    assert.ok(Math.abs(mean) < (5.5 * sigma) / Math.sqrt(n), `mean ${mean}`);
    assert.ok(Math.abs(variance / (sigma * sigma) - 1) < 5.5 * Math.sqrt(2 / n), `variance ${variance}`);
    const sorted = Float64Array.from(x).sort();
    let d = 0;
    for (let i = 0; i < n; i++) {
      const f = phi(sorted[i] / sigma);
      d = Math.max(d, Math.abs(f - i / n), Math.abs(f - (i + 1) / n));
    }
    assert.ok(d < 2.7 / Math.sqrt(n), `KS distance ${d}`); // Kolmogorov: P(D√n > 2.7) ≈ 1e-6
  });

  it('noise comes from a CSPRNG: two draws differ; adding noise shifts by the right amount', () => {
    const a = new Float32Array(1000);
    const b = new Float32Array(1000);
    fillGaussian(a, 1);
    fillGaussian(b, 1);
    assert.notDeepEqual(a, b);
    const v = new Float32Array(100_000).fill(3);
    addGaussianNoise(v, 0.5);
    const mean = v.reduce((s, x) => s + x, 0) / v.length;
    assert.ok(Math.abs(mean - 3) < (5.5 * 0.5) / Math.sqrt(v.length));
  });

  it('discrete Gaussian (σ = 1.5) matches its exact pmf: chi-square over 100,000 samples', () => {
    const sampler = new DiscreteGaussianSampler(1.5);
    const n = 100_000;
    const counts = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const x = sampler.sample();
      assert.ok(Number.isInteger(x));
      counts.set(x, (counts.get(x) ?? 0) + 1);
    }
    const s2 = sampler.variance;
    let z = 0;
    for (let x = -60; x <= 60; x++) z += Math.exp((-x * x) / (2 * s2));
    const pmf = (x: number): number => Math.exp((-x * x) / (2 * s2)) / z;
    // Cells -5..5 and the two tails.
    let chi2 = 0;
    let tailObs = 0;
    let tailP = 0;
    for (const [x, c] of counts) if (Math.abs(x) > 5) tailObs += c;
    for (let x = -60; x <= 60; x++) if (Math.abs(x) > 5) tailP += pmf(x);
    for (let x = -5; x <= 5; x++) chi2 += ((counts.get(x) ?? 0) - n * pmf(x)) ** 2 / (n * pmf(x));
    chi2 += (tailObs - n * tailP) ** 2 / (n * tailP);
    assert.ok(chi2 < 49, `chi-square ${chi2} with 11 degrees of freedom (P(χ²₁₁ > 49) < 1e-6)`);
  });

  it('discrete Gaussian at larger σ has the right variance and rounds σ² up, never down', () => {
    const sampler = new DiscreteGaussianSampler(20.3);
    assert.ok(sampler.variance >= 20.3 * 20.3);
    const n = 50_000;
    let v = 0;
    for (let i = 0; i < n; i++) v += sampler.sample() ** 2;
    v /= n;
    assert.ok(Math.abs(v / sampler.variance - 1) < 5.5 * Math.sqrt(2 / n), `variance ${v}`);
  });

  it('clips the whole update to norm C and leaves smaller updates alone', () => {
    const big = Float32Array.from([3, 4, 12]); // norm 13
    assert.deepEqual(clipToNorm(big, 6.5), { norm: 13, factor: 0.5 });
    assert.ok(Math.abs(l2Norm(big) - 6.5) < 1e-6);
    const small = Float32Array.from([0.1, 0.2]);
    assert.equal(clipToNorm(small, 1).factor, 1);
    assert.deepEqual([...small], [Math.fround(0.1), Math.fround(0.2)]);
  });

  it('refuses bad parameters before doing any work', () => {
    assert.throws(() => clipToNorm(new Float32Array(3), 0), PrivacyParameterError);
    assert.throws(() => clipToNorm(new Float32Array(3), -1), /clip norm C must be/);
    assert.throws(() => fillGaussian(new Float32Array(3), 0), /standard deviation/);
    assert.throws(() => new DiscreteGaussianSampler(Number.NaN), /σ must be/);
  });
});
