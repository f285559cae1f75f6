/**
 * log(erfc(x)) to near double precision over the whole real line, and log-domain sums. Needed by
 * the RDP accountant at fractional orders, where erfc of large arguments underflows.
 *   x < 2:  erfc = 1 - erf, erf by its Taylor series (converges fast; little cancellation here)
 *   x >= 2: erfc(x) = exp(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))), the continued
 *           fraction evaluated with Lentz's method, kept in the log domain so it never underflows.
 */
const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);

function erfSeries(x: number): number {
  // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
  let term = x;
  let sum = x;
  const x2 = x * x;
  for (let n = 1; n < 200; n++) {
    term *= -x2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** log of 1/(x + (1/2)/(x + 1/(x + ...))) for x >= 2. */
function logErfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = f;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (Math.abs(d) < tiny) d = tiny;
    d = 1 / d;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -Math.log(f);
}

export function logErfc(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x >= 2) return -x * x - LOG_SQRT_PI + logErfcContinuedFraction(x);
  if (x > -2) return Math.log(1 - erfSeries(x));
  // erfc(x) = 2 - erfc(-x) for negative x, with erfc(-x) tiny: log(2 - e^l) computed stably.
  const l = logErfc(-x);
  return Math.log(2) + Math.log1p(-Math.exp(l) / 2);
}

export function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log1p(Math.exp(-Math.abs(a - b)));
}

/** log(e^a - e^b) for a >= b. */
export function logSub(a: number, b: number): number {
  if (b === -Infinity) return a;
  if (a < b) throw new RangeError('logSub: result would be negative');
  if (a === b) return -Infinity;
  return a + Math.log(-Math.expm1(b - a));
}
