/**
 * Fast discrete Gaussian N_Z(0, σ²) — D(x) = ρ(x)/Σ_y ρ(y), ρ(x) = exp(−x²/(2σ²)) — within
 * statistical distance < 2^-70 of the exact distribution for every σ it accepts (goal: 2^-64;
 * derivation below, the per-sampler bound is `statisticalDistanceBound`), at tens of millions of
 * samples/s on one core. Randomness: only 32-bit words of the AES-256-CTR stream
 * (SecureRandomStream). Sampling is integer comparisons and additions (the tables' first words
 * sit in a Float64Array only to hold the 2^32 sentinel); floating point is used only to choose
 * parameters and to report the bound. σ² is rounded up to the 2^-20 grid exactly as the exact
 * sampler (ExactDiscreteGaussianSampler, the test oracle) does: never less noise than asked.
 *
 * (1) Table sampler, σ ≤ 2048 (a cumulative distribution table, CDT). Values −N..N with
 *   N the least integer with τ := 2ρ(N+1) / ((1 − q)·S_N) ≤ 2^-72, where S_N = Σ_{|x|≤N} ρ(x)
 *   and q = ρ(N+2)/ρ(N+1) = exp(−(2N+3)/(2σ²)). Since the ratios ρ(j+1)/ρ(j) decrease in j,
 *   Σ_{j>N} ρ(j) ≤ ρ(N+1)/(1 − q), so τ bounds D's mass outside [−N, N] (Z ≥ S_N), and that
 *   mass is exactly the statistical distance from D to D̃ = D conditioned on [−N, N] (N ≈ 10.5σ).
 *   Table: T_i = ⌊2^96 · C_i⌋ for i < 2N, T_2N = 2^96, with C_i the cumulative mass of D̃ up to
 *   value i − N, stored as three 32-bit words. A sample is the least i with U < T_i for U a
 *   uniform 96-bit integer, output i − N: P(i) = (T_i − T_{i−1})/2^96 exactly. The C_i are
 *   computed in 192-bit fixed point (BigInt; exp by range reduction, Taylor series and
 *   squaring; ρ(k+1) = ρ(k)·a^{2k+1}, a = exp(−1/(2σ²))): every computed ρ(k) is within
 *   (k+2)²·2^-190 ≤ 2^-148 of the true value, so |T_i/2^96 − C_i| ≤ e := 2^-96 + 2^-120. With
 *   T_{−1} = 0 and T_2N exact, Σ_i |P(i) − D̃(i)| ≤ Σ_{i<2N} 2e = 4N·e, hence
 *       SD(table, D) ≤ τ + 2N·e ≤ 2^-72 + 2^20·2^-95.9 < 2^-71.9      (2N + 1 ≤ 2^20 enforced).
 *   Lookup: a guide array indexed by the top G ≤ 16 bits of U's first word gives the first
 *   candidate; a scan compares first words only; the two further words are drawn only on a tie
 *   of first words (probability < 2N·2^-32), then compared in full. Usually one word per sample.
 *
 * (2) Convolution, σ > 2048 (Pöppelmann–Ducas–Güneysu 2014, Micciancio–Walter 2017; the bound
 *   here is the elementary Poisson-summation one). X = Y + K·Z, Y ~ D_{s1}, Z ~ D_{s2}
 *   independent, K ≥ 1 an integer, s1² = 8K², s2² = (σ² − s1²)/K² ≥ 8, so s1² + K²s2² = σ²
 *   exactly (rationals). Completing the square, (x − Kz)²/s1² + z²/s2² = x²/σ² + (z − cx)²/s3²
 *   with 1/s3² = 1/s2² + K²/s1² ≤ 1/8 + 1/8 and c = K s2²/σ², so
 *       P(X = x) ∝ ρ_σ(x) · Σ_z ρ_{s3}(z − cx),   and by Poisson summation
 *       Σ_z ρ_{s3}(z + t) = √(2π)·s3 · (1 + Σ_{k≠0} exp(−2π²s3²k²) cos(2πkt)) ∈ √(2π)s3·[1 − δ, 1 + δ],
 *   δ = 2Σ_{k≥1} exp(−2π²s3²k²) ≤ 2e^{−2π²s3²}/(1 − e^{−2π²s3²}) ≤ 2e^{−8π²}(1 + 2^-100) < 2^-112.9
 *   (s3² ≥ 4). So P(X = x)/D_σ(x) ∈ [(1−δ)/(1+δ), (1+δ)/(1−δ)] for every x, and
 *       SD(X, D_σ) ≤ ½·Σ_x D_σ(x)·2δ/(1 − δ) = δ/(1 − δ) < 2^-112.8.
 *   With approximate component samplers Ŷ, Ẑ, coupling gives SD(Ŷ + KẐ, Y + KZ) ≤ SD(Ŷ, Y) + SD(Ẑ, Z).
 *   K = ⌊√(σ/√8)⌋ (s1 ≈ s2 ≈ √(2.83σ): two small tables), at most ⌊2048/√8⌋ = 724; if s2 > 2048
 *   the Z sampler is itself a convolution (σ > ~1.48e6 only).
 *
 * (3) Total: SD ≤ Σ_tables 2^-71.9 + Σ_convolutions 2^-112.8: < 2^-71.9 for σ ≤ 2048, < 2^-70.9
 *   for σ ≤ ~1.48e6 (two tables), < 2^-70.3 up to the largest σ whose samples fit an Int32 (~2e8,
 *   three tables; larger σ is refused). The bound of each sampler is `statisticalDistanceBound`.
 *
 * Timing: the scan length (and a rare tie) depends on the sample's magnitude — this is local
 * noise on the caller's own data, so nothing secret leaves; it is not constant-time. Tables are
 * cached per σ² (a few ms to build; ≤ 1 MB each).
 */
import { PrivacyParameterError } from './privacyErrors.js';
import { SecureRandomStream } from './secureRandom.js';
import { type Rational, varianceOnGrid } from './exactDiscreteGaussian.js';

export { ExactDiscreteGaussianSampler, varianceOnGrid } from './exactDiscreteGaussian.js';

/** Largest σ served by one table; above it the convolution (2) is used. */
export const TABLE_SIGMA_MAX = 2048;
const W = 192n; // fixed-point fraction bits of the table computation
const ONE = 1n << W;
const TAIL_LOG2 = 72n; // τ ≤ 2^-72 per table
const MAX_ENTRIES = 1 << 20; // 2N + 1 ≤ 2^20
const WORD = 4294967296;
const CHUNK = 4096;

/** 2^W·exp(−num/den) for num/den ≥ 0, num/den ≤ 2^20, within 2^W·2^-191 (see (1)). */
export function expNegFixed(num: bigint, den: bigint): bigint {
  const p = W + 64n; // working precision: 64 guard bits
  let r = 0n; // range reduction: y = x/2^r ≤ 2^-8
  while (num << 8n > den << r) r++;
  const y = (num << p) / (den << r);
  let term = 1n << p;
  let sum = term;
  for (let i = 1n; term !== 0n; i++) {
    term = ((term * y) >> p) / i; // y^i/i!: ≤ 2.01 units of error each, ≤ 33 terms
    sum += i & 1n ? -term : term;
  }
  for (let j = 0n; j < r; j++) sum = (sum * sum) >> p; // absolute error at most doubles (+1 unit) per squaring
  return sum >> 64n;
}

/** A cumulative distribution table for one σ², see (1). */
export class CdtTable {
  readonly n: number; // values −n..n
  readonly hi: Float64Array; // first (most significant) word of T_i; hi[2n] = 2^32 is the sentinel
  readonly mid: Uint32Array;
  readonly lo: Uint32Array;
  readonly guide: Int32Array; // guide[g] = least i with hi[i] > g·2^shift
  readonly shift: number;
  /** Upper bound on the statistical distance to the exact discrete Gaussian of variance σ². */
  readonly sdBound: number;

  constructor(readonly sigma2: Rational) {
    const { n: sn, d: sd } = sigma2;
    const a = expNegFixed(sd, 2n * sn); // exp(−1/(2σ²))
    const b = expNegFixed(sd, sn); // exp(−1/σ²) = a²
    const rho: bigint[] = [ONE]; // ρ(0..N)
    let f = a; // ρ(k+1)/ρ(k) = a^{2k+1}
    let total = ONE; // S_N = ρ(0) + 2Σ_{1..N} ρ(j)
    for (let k = 0; ; k++) {
      const next = (rho[k] * f) >> W; // ρ(k+1)
      const q = (f * b) >> W; // ρ(k+2)/ρ(k+1)
      // τ = 2ρ(N+1)/((1 − q)·S_N) ≤ 2^-72, tested as 2ρ·2^73 ≤ (1 − q)·S: a factor 2 of slack
      // for the (≤ 2^-148 relative to S) error of the fixed-point values.
      if ((next << (TAIL_LOG2 + 2n + W)) <= (ONE - q) * total) break;
      rho.push(next);
      total += 2n * next;
      f = q;
      if (2 * rho.length - 1 > MAX_ENTRIES) throw new PrivacyParameterError(`discrete Gaussian table for σ² = ${Number(sn) / Number(sd)} would exceed ${MAX_ENTRIES} entries`);
    }
    const nMax = rho.length - 1;
    this.n = nMax;
    const m = 2 * nMax + 1;
    this.hi = new Float64Array(m);
    this.mid = new Uint32Array(m);
    this.lo = new Uint32Array(m);
    let c = 0n;
    for (let i = 0; i < m - 1; i++) {
      c += rho[Math.abs(i - nMax)];
      const t = (c << 96n) / total; // ⌊2^96·C_i⌋
      this.hi[i] = Number(t >> 64n);
      this.mid[i] = Number((t >> 32n) & 0xffffffffn);
      this.lo[i] = Number(t & 0xffffffffn);
    }
    this.hi[m - 1] = WORD; // T_2N = 2^96
    const g = Math.max(4, Math.min(16, Math.ceil(Math.log2(m)) + 2));
    this.shift = 32 - g;
    this.guide = new Int32Array(1 << g);
    for (let j = 0, i = 0; j < 1 << g; j++) {
      const threshold = j * 2 ** this.shift;
      while (this.hi[i] <= threshold) i++;
      this.guide[j] = i;
    }
    this.sdBound = 2 ** -Number(TAIL_LOG2) + 2 * nMax * (2 ** -96 + 2 ** -120);
  }
}

/** Words of the AES-CTR stream, read straight from its 64 KiB blocks. */
class Words {
  w: Uint32Array;
  p = 0;
  constructor(private readonly rng: SecureRandomStream) {
    this.w = rng.nextBlock();
  }

  refill(): Uint32Array {
    this.w = this.rng.nextBlock();
    this.p = 0;
    return this.w;
  }

  next(): number {
    if (this.p === this.w.length) this.refill();
    return this.w[this.p++];
  }
}

/** Fills dst[from, to) from the table. */
function fillTable(t: CdtTable, dst: Int32Array, from: number, to: number, src: Words): void {
  const hi = t.hi;
  const guide = t.guide;
  const shift = t.shift;
  const off = t.n;
  let w = src.w;
  let p = src.p;
  for (let i = from; i < to; i++) {
    if (p === w.length) {
      w = src.refill();
      p = 0;
    }
    const u = w[p++];
    let k = guide[u >>> shift];
    while (hi[k] <= u) k++;
    if (k !== 0 && hi[k - 1] === u) {
      src.p = p;
      k = resolveTie(t, u, k, src);
      w = src.w;
      p = src.p;
    }
    dst[i] = k - off;
  }
  src.p = p;
}

/** First words tie (hi[k−1] = u0): draw the other two words of U and compare in full. */
function resolveTie(t: CdtTable, u0: number, k: number, src: Words): number {
  const u1 = src.next();
  const u2 = src.next();
  let i = k - 1;
  while (i > 0 && t.hi[i - 1] === u0) i--;
  for (; ; i++) {
    if (t.hi[i] > u0) return i;
    const m = t.mid[i];
    if (m > u1 || (m === u1 && t.lo[i] > u2)) return i;
  }
}

type Plan = { kind: 'table'; table: CdtTable } | { kind: 'conv'; fine: CdtTable; k: number; coarse: Plan; tmp: Int32Array; delta: number };

const tableCache = new Map<string, CdtTable>();
const TABLE_CACHE_SIZE = 16;

function tableFor(sigma2: Rational): CdtTable {
  const key = `${sigma2.n}/${sigma2.d}`;
  let t = tableCache.get(key);
  if (!t) {
    t = new CdtTable(sigma2);
    if (tableCache.size >= TABLE_CACHE_SIZE) tableCache.delete(tableCache.keys().next().value as string);
    tableCache.set(key, t);
  }
  return t;
}

function makePlan(sigma2: Rational): Plan {
  const { n, d } = sigma2;
  const sigma = Math.sqrt(Number(n) / Number(d));
  if (sigma <= TABLE_SIGMA_MAX) return { kind: 'table', table: tableFor(sigma2) };
  const k = BigInt(Math.max(1, Math.min(Math.floor(Math.sqrt(sigma / Math.SQRT2 / 2)), Math.floor(TABLE_SIGMA_MAX / Math.sqrt(8)))));
  // s1² = 8K², s2² = (σ² − 8K²)/K² ≥ 8 ⇔ σ² ≥ 16K²
  if (n < 16n * k * k * d) throw new Error('discrete Gaussian: convolution parameters out of range'); // cannot happen for σ > 2048
  const s2 = { n: n - 8n * k * k * d, d: k * k * d };
  const s3sq = 1 / (1 / (Number(s2.n) / Number(s2.d)) + 1 / 8); // ≥ 4
  const e = Math.exp(-2 * Math.PI * Math.PI * s3sq);
  const delta = (2 * e) / (1 - e);
  return { kind: 'conv', fine: tableFor({ n: 8n * k * k, d: 1n }), k: Number(k), coarse: makePlan(s2), tmp: new Int32Array(CHUNK), delta: delta / (1 - delta) };
}

function planSdBound(p: Plan): number {
  return p.kind === 'table' ? p.table.sdBound : p.fine.sdBound + p.delta + planSdBound(p.coarse);
}

function planMaxAbs(p: Plan): number {
  return p.kind === 'table' ? p.table.n : p.fine.n + p.k * planMaxAbs(p.coarse);
}

function fillPlan(p: Plan, dst: Int32Array, from: number, to: number, src: Words): void {
  if (p.kind === 'table') {
    fillTable(p.table, dst, from, to, src);
    return;
  }
  fillTable(p.fine, dst, from, to, src);
  const tmp = p.tmp;
  const k = p.k;
  for (let start = from; start < to; start += CHUNK) {
    const len = Math.min(CHUNK, to - start);
    fillPlan(p.coarse, tmp, 0, len, src);
    for (let j = 0; j < len; j++) dst[start + j] += k * tmp[j];
  }
}

/**
 * N_Z(0, σ²) noise, σ² ≥ the requested σ² (2^-20 grid, rounded up), within statistical distance
 * `statisticalDistanceBound` (< 2^-70) of exact. `fill` is the fast path; `sample` draws from an
 * internal buffer filled the same way.
 */
export class DiscreteGaussianSampler {
  private readonly sigma2: Rational;
  private readonly plan: Plan;
  private readonly words: Words;
  private readonly buf = new Int32Array(1024);
  private bufPos = 1024;

  constructor(sigma: number, rng = new SecureRandomStream()) {
    this.sigma2 = varianceOnGrid(sigma);
    this.plan = makePlan(this.sigma2);
    if (planMaxAbs(this.plan) > 0x7fffffff) throw new PrivacyParameterError(`discrete Gaussian σ = ${sigma} is too large for 32-bit integer noise`);
    this.words = new Words(rng);
  }

  /** σ² actually used (≥ the requested σ²). */
  get variance(): number {
    return Number(this.sigma2.n) / Number(this.sigma2.d);
  }

  /** σ² actually used, exactly: n/d. */
  get varianceRational(): Rational {
    return { ...this.sigma2 };
  }

  /** Upper bound on the statistical distance between this sampler's output and N_Z(0, σ²). */
  get statisticalDistanceBound(): number {
    return planSdBound(this.plan);
  }

  /** How samples are drawn: one table, or X = Y + K·Z (with Z possibly a convolution again). */
  get method(): string {
    const describe = (p: Plan): string => (p.kind === 'table' ? `table(N=${p.table.n})` : `table(N=${p.fine.n}) + ${p.k}·${describe(p.coarse)}`);
    return describe(this.plan);
  }

  /** X = Σ multiplier_i · Y_i, Y_i independent table samples of the given variances (Σ m_i²·σ_i² = σ²). */
  get components(): Array<{ multiplier: number; variance: Rational }> {
    const list: Array<{ multiplier: number; variance: Rational }> = [];
    for (let p: Plan | undefined = this.plan, m = 1; p; ) {
      if (p.kind === 'table') {
        list.push({ multiplier: m, variance: { ...p.table.sigma2 } });
        p = undefined;
      } else {
        list.push({ multiplier: m, variance: { ...p.fine.sigma2 } });
        m *= p.k;
        p = p.coarse;
      }
    }
    return list;
  }

  sample(): number {
    if (this.bufPos === this.buf.length) {
      fillPlan(this.plan, this.buf, 0, this.buf.length, this.words);
      this.bufPos = 0;
    }
    return this.buf[this.bufPos++];
  }

  fill(out: Int32Array | Float32Array | Float64Array): void {
    if (out instanceof Int32Array) {
      fillPlan(this.plan, out, 0, out.length, this.words);
      return;
    }
    const chunk = new Int32Array(Math.min(out.length, CHUNK * 4));
    for (let start = 0; start < out.length; start += chunk.length) {
      const len = Math.min(chunk.length, out.length - start);
      fillPlan(this.plan, chunk, 0, len, this.words);
      out.set(len === chunk.length ? chunk : chunk.subarray(0, len), start);
    }
  }
}
