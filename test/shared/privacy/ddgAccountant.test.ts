import assert from 'node:assert/strict';
import { ddgRdp, ddgRdpFromTerms, ddgTau, roundedL1NormBound, roundedL2NormBound } from '../../../shared/privacy/ddgAccountant.js';
import { distributedDiscreteGaussian, epsilonOfRounds, mechanismRdp } from '../../../shared/privacy/privacyMechanism.js';
import { PrivacyParameterError } from '../../../shared/privacy/privacyErrors.js';
import { DEFAULT_ORDERS } from '../../../shared/privacy/rdpAccountant.js';

/**
 * Independent evaluation: the exact pmf of the sum of n discrete Gaussians N_Z(0, σ²) by
 * convolution (log domain, truncated far in the tails), and the exact Rényi divergence
 * D_α(S + Δ ‖ S) between the shifted and unshifted sums — what a coordinator seeing the noisy
 * sum can tell about one summand that moved it by the integer Δ.
 */
function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  return a > b ? a + Math.log1p(Math.exp(b - a)) : b + Math.log1p(Math.exp(a - b));
}

function logSumExp(xs: number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  if (m === -Infinity) return m;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

/** log pmf of N_Z(0, σ²) on [−K, K] (index x + K). */
function discreteGaussianLogPmf(sigma: number, K: number): number[] {
  const out = Array.from({ length: 2 * K + 1 }, (_, i) => -((i - K) ** 2) / (2 * sigma * sigma));
  const z = logSumExp(out);
  return out.map((v) => v - z);
}

function convolve(a: number[], b: number[]): number[] {
  const out = new Array<number>(a.length + b.length - 1).fill(-Infinity);
  for (let i = 0; i < a.length; i++) for (let j = 0; j < b.length; j++) out[i + j] = logAddExp(out[i + j], a[i] + b[j]);
  return out;
}

const sumCache = new Map<string, number[]>();
function sumLogPmf(sigma: number, n: number, K: number): number[] {
  const key = `${sigma}|${n}|${K}`;
  let s = sumCache.get(key);
  if (!s) {
    const base = discreteGaussianLogPmf(sigma, K);
    s = base;
    for (let i = 1; i < n; i++) s = convolve(s, base);
    sumCache.set(key, s);
  }
  return s;
}

/** Exact D_α(S + shift ‖ S) for S the sum of n discrete Gaussians. */
function exactRenyi(sigma: number, n: number, shift: number, alpha: number): number {
  if (shift === 0) return 0;
  const K = Math.ceil(14 * sigma + alpha * Math.abs(shift) + 12);
  const lp = sumLogPmf(sigma, n, K);
  const terms: number[] = [];
  for (let x = 0; x < lp.length; x++) {
    const y = x - shift;
    if (y >= 0 && y < lp.length) terms.push(alpha * lp[y] + (1 - alpha) * lp[x]);
  }
  return logSumExp(terms) / (alpha - 1);
}

/** The bound for an explicit integer shift vector (its L2 and L1 norms are the sensitivities). */
function boundFor(v: number[], sigma: number, n: number, alpha: number): number {
  const l2 = Math.hypot(...v);
  const l1 = v.reduce((s, x) => s + Math.abs(x), 0);
  return ddgRdpFromTerms({ l2, l1, tau: ddgTau(sigma, n), sigma, summands: n, dimension: v.length }, [alpha])[0];
}

describe('shared/privacy/ddgAccountant (distributed discrete Gaussian, Kairouz–Liu–Steinke 2021)', () => {
  it('bounds the exact Rényi divergence of a sum of n discrete Gaussians (1-D, small σ where the sum is far from a discrete Gaussian)', () => {
    let checked = 0;
    for (const sigma of [0.5, 0.6, 0.8, 1, 1.5]) {
      for (const n of [1, 2, 3, 5]) {
        for (const shift of [1, 2, 3]) {
          for (const alpha of [1.5, 2, 3.7, 8, 16]) {
            const exact = exactRenyi(sigma, n, shift, alpha);
            const bound = boundFor([shift], sigma, n, alpha);
            assert.ok(exact <= bound * (1 + 1e-9), `σ=${sigma} n=${n} Δ=${shift} α=${alpha}: exact ${exact} > bound ${bound}`);
            checked++;
          }
        }
      }
    }
    assert.equal(checked, 300);
  });

  it('needs its τ term: at σ = 1/2 the exact divergence exceeds the continuous Gaussian\'s α·Δ²/(2nσ²), and the bound covers it', () => {
    const [sigma, n, alpha] = [0.5, 2, 16];
    const exact = exactRenyi(sigma, n, 1, alpha);
    const gaussian = alpha / (2 * n * sigma * sigma);
    assert.ok(exact > gaussian * 1.01, `${exact} vs ${gaussian}`);
    assert.ok(boundFor([1], sigma, n, alpha) >= exact);
  });

  it('bounds the exact divergence of d-dimensional shifts (product distributions: D_α adds over coordinates), where the L1 term matters', () => {
    for (const sigma of [0.6, 1]) {
      for (const n of [2, 4]) {
        for (const v of [Array(25).fill(1), [3, -2, 1, 1, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [2, 2, -2, 2]]) {
          for (const alpha of [2, 6, 20]) {
            const exact = v.reduce((s, x) => s + exactRenyi(sigma, n, Math.abs(x), alpha), 0);
            const bound = boundFor(v, sigma, n, alpha);
            assert.ok(exact <= bound * (1 + 1e-9), `σ=${sigma} n=${n} v=${v.join(',')} α=${alpha}: ${exact} > ${bound}`);
          }
        }
      }
    }
  });

  it('is tight where the sum is close to a discrete Gaussian (σ ≥ 1: within 1% of the exact divergence)', () => {
    for (const [sigma, n, shift, alpha] of [
      [1, 3, 1, 2],
      [1.5, 5, 2, 8],
      [2, 4, 3, 16],
    ]) {
      const exact = exactRenyi(sigma, n, shift, alpha);
      const bound = boundFor([shift], sigma, n, alpha);
      assert.ok(bound / exact < 1.01, `σ=${sigma}: bound ${bound} exact ${exact}`);
    }
  });

  it('with one summand (τ = 0) is the discrete Gaussian\'s α·Δ₂²/(2σ²)', () => {
    assert.equal(ddgTau(3, 1), 0);
    const [r] = ddgRdp({ scaledClip: 10, dimension: 4, beta: 0, maxWeight: 1, sigma: 5, summands: 1 }, [3]);
    assert.ok(Math.abs(r - (3 * 12 ** 2) / (2 * 25)) < 1e-12);
  });

  it('rounding norm bound: (c + √d) always holds, the conditional bound fails with probability ≤ β for one randomised rounding, L1 ≤ min(√d·Δ₂, Δ₂²)', () => {
    const d = 400;
    const c = 7.3;
    assert.equal(roundedL2NormBound(c, d, 0), c + 20);
    const beta = 0.2;
    const bound = roundedL2NormBound(c, d, beta);
    assert.ok(Math.abs(bound ** 2 - (c * c + d / 4 + Math.sqrt(2 * Math.log(1 / beta)) * (c + 10))) < 1e-9);
    assert.ok(bound < c + 20);
    // Worst case for rounding: every coordinate a half-integer away, yet the norm at most c.
    let seed = 12345;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const x = Array.from({ length: d }, (_, i) => (i % 2 ? 0.5 : -0.5) * (c / 10) * 0.999);
    const norm = Math.hypot(...x);
    assert.ok(norm <= c);
    let failures = 0;
    const trials = 3000;
    for (let k = 0; k < trials; k++) {
      let sq = 0;
      let l1 = 0;
      for (const xi of x) {
        const f = Math.floor(xi);
        const q = rand() < xi - f ? f + 1 : f;
        sq += q * q;
        l1 += Math.abs(q);
      }
      assert.ok(Math.sqrt(sq) <= c + Math.sqrt(d));
      assert.ok(l1 <= roundedL1NormBound(Math.sqrt(sq), d) + 1e-9);
      if (sq > bound * bound) failures++;
    }
    assert.ok(failures / trials <= beta, `failure rate ${failures / trials} > β = ${beta}`);
  });

  it('approaches the continuous Gaussian with the same total noise as the quantisation gets finer', () => {
    const z = 1.2;
    const gaussian = epsilonOfRounds([[{ kind: 'gaussian', noiseMultiplier: z }]], 1e-5).epsilon;
    const ratios = [8, 12, 16, 20].map((bits) => {
      const step = 1 / (2 ** (bits - 1) - 1);
      const t = 4;
      const m = distributedDiscreteGaussian({ clip: 1, dimension: 10_000, step, sigmaSteps: (z * 1) / Math.sqrt(t) / step, minSummands: t, beta: Math.exp(-0.5) });
      return epsilonOfRounds([[m]], 1e-5).epsilon / gaussian;
    });
    for (let i = 1; i < ratios.length; i++) assert.ok(ratios[i] < ratios[i - 1], ratios.join(', '));
    assert.ok(ratios[0] > 1.05, ratios.join(', ')); // 8 bits, 10k values: rounding inflates Δ₂ by ~8%
    assert.ok(ratios[ratios.length - 1] >= 1 && ratios[ratios.length - 1] < 1.001, ratios.join(', '));
  });

  it('is monotone: more summands (same per-site σ) cost less; more dimensions, a coarser step (same float noise) and unconditional rounding cost more', () => {
    const eps = (o: Partial<Parameters<typeof distributedDiscreteGaussian>[0]>) =>
      epsilonOfRounds([[distributedDiscreteGaussian({ clip: 1, dimension: 1000, step: 1 / 255, sigmaSteps: 100, minSummands: 3, beta: Math.exp(-0.5), ...o })]], 1e-5).epsilon;
    const byN = [2, 3, 5, 10, 50].map((n) => eps({ minSummands: n }));
    const byD = [10, 1000, 100_000, 10_000_000].map((d) => eps({ dimension: d }));
    // Same float noise 100/255 per site while the step grows: fewer steps of noise, relatively bigger rounding.
    const byStep = [1 / 1023, 1 / 255, 1 / 63].map((step) => eps({ step, sigmaSteps: 100 / 255 / step }));
    for (let i = 1; i < byN.length; i++) assert.ok(byN[i] < byN[i - 1], `n: ${byN.join(', ')}`);
    for (let i = 1; i < byD.length; i++) assert.ok(byD[i] > byD[i - 1], `d: ${byD.join(', ')}`);
    for (let i = 1; i < byStep.length; i++) assert.ok(byStep[i] > byStep[i - 1], `γ: ${byStep.join(', ')}`);
    assert.ok(eps({ beta: 0 }) > eps({}));
    assert.ok(eps({ maxWeight: 2 }) > eps({}));
  });

  it('is memoised per mechanism and refuses parameters outside its domain', () => {
    const m = distributedDiscreteGaussian({ clip: 1, dimension: 100, step: 0.01, sigmaSteps: 50, minSummands: 3 });
    assert.equal(mechanismRdp(m), mechanismRdp({ ...m }));
    assert.equal(mechanismRdp(m).length, DEFAULT_ORDERS.length);
    for (const bad of [{ sigmaSteps: 0.3 }, { minSummands: 0 }, { minSummands: 2.5 }, { beta: 1 }, { dimension: 0 }, { clip: -1 }, { maxWeight: 0 }, { step: 0 }]) {
      assert.throws(() => distributedDiscreteGaussian({ clip: 1, dimension: 100, step: 0.01, sigmaSteps: 50, minSummands: 3, ...bad }), PrivacyParameterError, JSON.stringify(bad));
    }
  });
});
