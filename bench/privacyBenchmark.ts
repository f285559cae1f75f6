/**
 * Privacy primitives: CSPRNG Gaussian noise throughput (goal >= 50 M samples/s on one core),
 * exact discrete Gaussian throughput, and the accountant's composition time (goal: 10^5 steps
 * in < 50 ms).
 */
import { DiscreteGaussianSampler } from '../shared/privacy/discreteGaussian.js';
import { fillGaussian } from '../shared/privacy/gaussianNoise.js';
import { RdpAccountant } from '../shared/privacy/rdpAccountant.js';
import { median, round } from './stats.js';

export async function benchPrivacy(repeats: number): Promise<Record<string, unknown>> {
  const out = new Float32Array(10_000_000);
  fillGaussian(out.subarray(0, 1_000_000), 1); // warm-up
  const gaussian: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    fillGaussian(out, 1);
    gaussian.push(round(out.length / ((performance.now() - t) / 1000) / 1e6, 1));
  }
  const dg = new DiscreteGaussianSampler(100);
  const discrete: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t = performance.now();
    for (let i = 0; i < 100_000; i++) dg.sample();
    discrete.push(round(100_000 / ((performance.now() - t) / 1000) / 1e3, 1));
  }
  const composeSame: number[] = [];
  const composeHetero: number[] = [];
  for (let r = 0; r < repeats; r++) {
    let t = performance.now();
    const a = new RdpAccountant();
    for (let i = 0; i < 100_000; i++) a.compose(0.01, 1.1);
    a.epsilon(1e-5);
    composeSame.push(round(performance.now() - t, 2));
    t = performance.now();
    const b = new RdpAccountant();
    for (let i = 0; i < 100_000; i++) b.compose(0.01 + (i % 100) * 0.001, 1 + (i % 100) * 0.01); // 100 distinct (q, z)
    b.epsilon(1e-5);
    composeHetero.push(round(performance.now() - t, 1));
  }
  return {
    gaussianMSamplesPerSecond: { median: median(gaussian), runs: gaussian },
    discreteGaussianKSamplesPerSecondSigma100: { median: median(discrete), runs: discrete },
    compose1e5StepsSameParamsMs: { median: median(composeSame), runs: composeSame },
    compose1e5Steps100DistinctParamsMs: { median: median(composeHetero), runs: composeHetero },
  };
}
