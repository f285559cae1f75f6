import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CdtTable, DiscreteGaussianSampler, ExactDiscreteGaussianSampler, expNegFixed, TABLE_SIGMA_MAX, varianceOnGrid } from '../../../shared/privacy/discreteGaussian.js';
import { PrivacyParameterError } from '../../../shared/privacy/privacyErrors.js';
import { SecureRandomStream } from '../../../shared/privacy/secureRandom.js';
import { logErfc } from '../../../shared/privacy/specialFunctions.js';

// Statistical checks use fixed sample sizes and fixed thresholds that do not depend on the (fresh,
// unseeded) randomness. Each check fails for a correct sampler with probability < 1e-12:
// z-scores at 7.1 (normal approximation), chi-square statistics with k degrees of freedom above
// k + 2√(kx) + 2x, x = ln 10^12 (Laurent–Massart: P(χ²_k ≥ that) ≤ e^-x; every expected cell
// count is ≥ 100 so the χ² approximation applies). About 60 checks: P(any false failure) < 1e-10.
const X = Math.log(1e12);
const Z = 7.1;
const chi2Limit = (k: number): number => k + 2 * Math.sqrt(k * X) + 2 * X;

const phi = (z: number): number => (z < 0 ? 0.5 * Math.exp(logErfc(-z / Math.SQRT2)) : 1 - 0.5 * Math.exp(logErfc(z / Math.SQRT2)));

/** The analytic distribution N_Z(0, s2): P(a ≤ X ≤ b), and the moments E X², E X⁴. */
function analytic(s2: number): { mass: (a: number, b: number) => number; m2: number; m4: number } {
  const s = Math.sqrt(s2);
  if (s <= 200) {
    const n = Math.ceil(40 * s) + 10;
    const w = new Float64Array(2 * n + 1);
    let z = 0;
    for (let x = -n; x <= n; x++) z += w[x + n] = Math.exp((-x * x) / (2 * s2));
    let m2 = 0;
    let m4 = 0;
    for (let x = -n; x <= n; x++) {
      w[x + n] /= z;
      m2 += w[x + n] * x * x;
      m4 += w[x + n] * x ** 4;
    }
    const mass = (a: number, b: number): number => {
      let p = 0;
      for (let x = Math.max(a, -n); x <= Math.min(b, n); x++) p += w[x + n];
      return p;
    };
    return { mass, m2, m4 };
  }
  // σ > 200: by Poisson summation the discrete moments equal the continuous ones up to
  // e^{-2π²σ²}, and the midpoint rule gives bin masses to ~1/(24σ²) relative.
  const mass = (a: number, b: number): number => phi((b + 0.5) / s) - phi((a - 0.5) / s);
  return { mass, m2: s2, m4: 3 * s2 * s2 };
}

/** Cells [lo_i, hi_i] of consecutive integers covering Z, each with expected count ≥ minCount. */
function makeCells(s2: number, n: number, minCount: number): Array<[number, number]> {
  const { mass } = analytic(s2);
  const s = Math.sqrt(s2);
  const width = s <= 4 ? 1 : Math.round(s / 4);
  const c = Math.ceil(6 * s) + 2;
  const fine: Array<[number, number]> = [[Number.MIN_SAFE_INTEGER, -c - 1]];
  for (let a = -c; a <= c; a += width) fine.push([a, Math.min(c, a + width - 1)]);
  fine.push([c + 1, Number.MAX_SAFE_INTEGER]);
  // Merge neighbours left to right until each cell expects ≥ minCount; a short last cell joins the one before.
  const cells: Array<[number, number]> = [];
  let open: [number, number] | undefined;
  for (const [a, b] of fine) {
    open = open ? [open[0], b] : [a, b];
    if (mass(open[0], open[1]) * n >= minCount) {
      cells.push(open);
      open = undefined;
    }
  }
  if (open) cells[cells.length - 1] = [cells[cells.length - 1][0], open[1]];
  return cells;
}

function countCells(values: Int32Array, cells: Array<[number, number]>): Float64Array {
  const counts = new Float64Array(cells.length);
  const los = cells.map((c) => c[0]);
  for (const v of values) {
    let lo = 0;
    let hi = cells.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (los[mid] <= v) lo = mid;
      else hi = mid - 1;
    }
    counts[lo]++;
  }
  return counts;
}

describe('shared/privacy: fast discrete Gaussian (table + convolution) against the analytic pmf and the exact sampler', () => {
  it('fixed-point exp matches Math.exp and is consistent with itself to ~2^-190', () => {
    for (const [num, den] of [
      [1n, 2n],
      [1n, 1n],
      [3n, 1n],
      [1n, 1000000n],
      [1048576n, 1n << 18n],
      [7n, 3n],
    ] as Array<[bigint, bigint]>) {
      const v = expNegFixed(num, den);
      const f = Number(v >> 140n) / 2 ** 52;
      assert.ok(Math.abs(f / Math.exp(-Number(num) / Number(den)) - 1) < 1e-14, `exp(-${num}/${den})`);
      const sq = (v * v) >> 192n; // exp(-x)² = exp(-2x)
      const twice = expNegFixed(2n * num, den);
      const diff = sq > twice ? sq - twice : twice - sq;
      assert.ok(diff < 1n << 8n, `exp(-${num}/${den})² vs exp(-2·${num}/${den}): ${diff} units of 2^-192`);
    }
    assert.equal(expNegFixed(0n, 1n), 1n << 192n);
  });

  it('σ² is rounded up to the 2^-20 grid exactly (never less noise), including where σ·σ in floating point rounds down', () => {
    for (const sigma of [0.5, 1, 1.5, 3.7, 20.3, 100, 1e4, 18918.2, 1e6, 123456.789, 0.001, Math.PI * 1e5]) {
      const { n, d } = varianceOnGrid(sigma);
      assert.equal(d, 1n << 20n);
      let e = 0n;
      let s = sigma;
      while (!Number.isInteger(s)) {
        s *= 2;
        e++;
      }
      const m2 = BigInt(s) ** 2n; // σ² = m2 / 4^e exactly
      assert.ok(n << (2n * e) >= m2 << 20n, `σ = ${sigma}: grid value below σ²`);
      assert.ok((n - 1n) << (2n * e) < m2 << 20n, `σ = ${sigma}: not the least grid value ≥ σ²`);
      const fast = new DiscreteGaussianSampler(sigma);
      assert.ok(fast.variance >= sigma * sigma);
      assert.deepEqual(fast.varianceRational, { n, d });
      assert.equal(new ExactDiscreteGaussianSampler(sigma).variance, fast.variance);
    }
  });

  it('tables: the sampled pmf (T_i − T_(i−1))/2^96 equals the analytic pmf, the cut tail is < 2^-72, and the bound is ≤ 2^-64', () => {
    for (const sigma of [0.5, 1, 3.7, 100, TABLE_SIGMA_MAX]) {
      const s2v = varianceOnGrid(sigma);
      const t = new CdtTable(s2v);
      const s2 = Number(s2v.n) / Number(s2v.d);
      const n = t.n;
      let z = 0;
      const far = Math.ceil(40 * Math.sqrt(s2)) + 10;
      for (let x = -far; x <= far; x++) z += Math.exp((-x * x) / (2 * s2));
      let outside = 0;
      for (let x = n + 1; x <= far; x++) outside += (2 * Math.exp((-x * x) / (2 * s2))) / z;
      assert.ok(outside <= 2 ** -72, `σ = ${sigma}: tail ${outside}`);
      assert.ok(n <= 11 * sigma + 12, `σ = ${sigma}: N = ${n}`);
      let prev = 0n;
      for (let i = 0; i < 2 * n + 1; i++) {
        const ti = i === 2 * n ? 1n << 96n : (BigInt(t.hi[i]) << 64n) | (BigInt(t.mid[i]) << 32n) | BigInt(t.lo[i]);
        assert.ok(ti >= prev);
        const p = Number(ti - prev) / 2 ** 96;
        const x = i - n;
        const want = Math.exp((-x * x) / (2 * s2)) / z;
        if (want > 1e-280) assert.ok(Math.abs(p - want) <= 1e-12 * want + 2 ** -95, `σ = ${sigma}, x = ${x}: ${p} vs ${want}`);
        prev = ti;
      }
      assert.ok(t.sdBound < 2 ** -71.9);
    }
    for (const sigma of [0.5, 1, 3.7, 100, 1e4, 18918, 1e6, 1e8]) {
      const bound = new DiscreteGaussianSampler(sigma).statisticalDistanceBound;
      assert.ok(bound < 2 ** -70, `σ = ${sigma}: ${bound}`);
    }
  });

  it('convolution: the variances of the components add up to σ² exactly, and each step is smooth (s3² ≥ 4)', () => {
    for (const sigma of [TABLE_SIGMA_MAX, TABLE_SIGMA_MAX + 0.01, 18918.4, 1e4, 1e6, 3e6, 1e8]) {
      const s = new DiscreteGaussianSampler(sigma);
      const { n, d } = s.varianceRational;
      const parts = s.components;
      assert.equal(parts.length, sigma <= TABLE_SIGMA_MAX ? 1 : sigma < 1.4e6 ? 2 : 3, s.method);
      // Σ m_i² n_i/d_i = n/d, in integers
      let num = 0n;
      let den = 1n;
      for (const { multiplier, variance } of parts) {
        const m2 = BigInt(multiplier) ** 2n;
        num = num * variance.d + m2 * variance.n * den;
        den *= variance.d;
        assert.ok(Math.sqrt(Number(variance.n) / Number(variance.d)) <= TABLE_SIGMA_MAX);
      }
      assert.equal(num * d, n * den, s.method);
      // Step i: Y_i + K·(rest), K = m_(i+1)/m_i, s1² = σ_i², s2² = variance of the rest / 1:
      // 1/s3² = 1/s2² + K²/s1² ≤ 1/4.
      for (let i = 0; i + 1 < parts.length; i++) {
        const k = parts[i + 1].multiplier / parts[i].multiplier;
        const s1sq = Number(parts[i].variance.n) / Number(parts[i].variance.d);
        let rest = 0;
        for (let j = i + 1; j < parts.length; j++) rest += (parts[j].multiplier / parts[i + 1].multiplier) ** 2 * (Number(parts[j].variance.n) / Number(parts[j].variance.d));
        assert.ok(1 / rest + (k * k) / s1sq <= 0.25 + 1e-12, `${s.method}: step ${i}`);
      }
    }
  });

  it('table lookup equals a plain 96-bit search on the same words, including ties of the first word', () => {
    const sigma = 3.7;
    const t = new CdtTable(varianceOnGrid(sigma));
    const m = 2 * t.n + 1;
    const T: bigint[] = [];
    for (let i = 0; i < m - 1; i++) T.push((BigInt(t.hi[i]) << 64n) | (BigInt(t.mid[i]) << 32n) | BigInt(t.lo[i]));
    T.push(1n << 96n);
    const words: number[] = [];
    const expected: number[] = [];
    const rnd = new Uint32Array(randomBytes(4 * 3 * 4000).buffer);
    for (let s = 0; s < 4000; s++) {
      const [r0, r1, r2] = [rnd[3 * s], rnd[3 * s + 1], rnd[3 * s + 2]];
      const j = r1 % (m - 1);
      let u: [number, number, number];
      if (s % 2 === 0) u = [r0, r1, r2]; // ordinary
      else if (s % 6 === 1) u = [t.hi[j], t.mid[j], t.lo[j]]; // exactly T_j: must give j + 1
      else if (s % 6 === 3) u = [t.hi[j], t.mid[j], (t.lo[j] + 0xffffffff) >>> 0]; // T_j − 1 (mostly): j
      else u = [t.hi[j], r1, r2]; // tie of the first word, random rest
      const U = (BigInt(u[0]) << 64n) | (BigInt(u[1]) << 32n) | BigInt(u[2]);
      const k = T.findIndex((ti) => U < ti);
      expected.push(k - t.n);
      // The sampler reads the second and third word only when some T_i has first word u[0].
      const tie = t.hi.includes(u[0]);
      words.push(u[0], ...(tie ? [u[1], u[2]] : []));
    }
    class Scripted extends SecureRandomStream {
      override nextBlock(): Uint32Array {
        return Uint32Array.from(words);
      }
    }
    const out = new Int32Array(expected.length);
    new DiscreteGaussianSampler(sigma, new Scripted()).fill(out);
    assert.deepEqual([...out], expected);
  });

  for (const sigma of [0.5, 1, 3.7, 100, 1e4, 1e6]) {
    it(`σ = ${sigma}: chi-square against the analytic pmf, mean, variance, tail mass (n = 400,000)`, () => {
      const n = 400_000;
      const sampler = new DiscreteGaussianSampler(sigma);
      const s2 = sampler.variance;
      assert.ok(s2 >= sigma * sigma);
      const x = new Int32Array(n);
      sampler.fill(x);
      const { mass, m2, m4 } = analytic(s2);
      const cells = makeCells(s2, n, 100);
      const counts = countCells(x, cells);
      let chi2 = 0;
      cells.forEach(([a, b], i) => {
        const e = n * mass(a, b);
        chi2 += (counts[i] - e) ** 2 / e;
      });
      assert.ok(chi2 < chi2Limit(cells.length - 1), `χ² = ${chi2.toFixed(1)} over ${cells.length} cells (limit ${chi2Limit(cells.length - 1).toFixed(1)}), ${sampler.method}`);
      let sum = 0;
      let sq = 0;
      let tail = 0;
      const cut = Math.floor(3 * Math.sqrt(s2));
      for (const v of x) {
        sum += v;
        sq += v * v;
        if (v > cut || v < -cut) tail++;
      }
      assert.ok(Math.abs(sum / n) < Z * Math.sqrt(m2 / n), `mean ${sum / n}`);
      assert.ok(Math.abs(sq / n - m2) < Z * Math.sqrt((m4 - m2 * m2) / n), `E x² = ${sq / n}, want ${m2}`);
      const pt = 1 - mass(-cut, cut);
      assert.ok(Math.abs(tail - n * pt) < Z * Math.sqrt(n * pt * (1 - pt)), `P(|x| > ${cut}) = ${tail / n}, want ${pt}`);
      if (sigma > TABLE_SIGMA_MAX) {
        // The convolution must mix residues: x mod 7 and x mod K (K of the plan) uniform.
        const k = Number(/\+ (\d+)·/.exec(sampler.method)![1]);
        for (const mod of [7, k]) {
          const c = new Float64Array(mod);
          for (const v of x) c[((v % mod) + mod) % mod]++;
          let chi = 0;
          for (const ci of c) chi += (ci - n / mod) ** 2 / (n / mod);
          assert.ok(chi < chi2Limit(mod - 1), `x mod ${mod}: χ² = ${chi.toFixed(1)}`);
        }
      }
    });
  }

  for (const sigma of [0.5, 1, 3.7, 100]) {
    it(`σ = ${sigma}: same distribution as the exact sampler (two-sample chi-square, 40,000 exact vs 400,000 fast samples)`, () => {
      const n1 = 40_000;
      const n2 = 400_000;
      const exact = new ExactDiscreteGaussianSampler(sigma);
      const a = new Int32Array(n1);
      exact.fill(a);
      const fast = new DiscreteGaussianSampler(sigma);
      const b = new Int32Array(n2);
      fast.fill(b);
      const cells = makeCells(fast.variance, n1, 100);
      const ca = countCells(a, cells);
      const cb = countCells(b, cells);
      let chi2 = 0;
      for (let i = 0; i < cells.length; i++) chi2 += (ca[i] * Math.sqrt(n2 / n1) - cb[i] * Math.sqrt(n1 / n2)) ** 2 / (ca[i] + cb[i]);
      assert.ok(chi2 < chi2Limit(cells.length - 1), `χ² = ${chi2.toFixed(1)} over ${cells.length} cells`);
    });
  }

  it('sample() and fill() into Float32/Float64 arrays give integers from the same distribution; no −0; fresh randomness per sampler', () => {
    const s = new DiscreteGaussianSampler(2.5);
    const f64 = new Float64Array(20_000);
    const f32 = new Float32Array(30_000);
    s.fill(f64);
    s.fill(f32);
    const singles = Array.from({ length: 5000 }, () => s.sample());
    for (const v of [...f64, ...f32, ...singles]) {
      assert.ok(Number.isInteger(v));
      assert.ok(!Object.is(v, -0));
    }
    const zeros = f64.filter((v) => v === 0).length;
    const p0 = analytic(s.variance).mass(0, 0);
    assert.ok(Math.abs(zeros - f64.length * p0) < Z * Math.sqrt(f64.length * p0 * (1 - p0)));
    const a = new Int32Array(64);
    const b = new Int32Array(64);
    new DiscreteGaussianSampler(1e4).fill(a);
    new DiscreteGaussianSampler(1e4).fill(b);
    assert.notDeepEqual(a, b);
  });

  it('refuses σ that is not finite and positive, or too large for 32-bit integer noise', () => {
    for (const bad of [Number.NaN, 0, -1, Infinity]) assert.throws(() => new DiscreteGaussianSampler(bad), PrivacyParameterError);
    assert.throws(() => new DiscreteGaussianSampler(1e9), /too large/);
    assert.ok(new DiscreteGaussianSampler(1e8).statisticalDistanceBound < 2 ** -64);
  });
});
