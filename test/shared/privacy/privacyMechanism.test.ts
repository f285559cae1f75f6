import assert from 'node:assert/strict';
import { clipBitMechanism, composeMechanisms, distributedDiscreteGaussian, epsilonOfRounds, equivalentNoiseMultiplier, gaussianMechanism, mechanismRdp, parseMechanism } from '../../../shared/privacy/privacyMechanism.js';
import { PrivacyParameterError } from '../../../shared/privacy/privacyErrors.js';
import { computeEpsilon, DEFAULT_ORDERS, RdpAccountant, rdpSubsampledGaussian } from '../../../shared/privacy/rdpAccountant.js';

describe('shared/privacy/privacyMechanism (what the ledgers charge)', () => {
  it('a Gaussian is the accountant\'s Gaussian at q = 1, and rounds of them compose to computeEpsilon', () => {
    assert.deepEqual(mechanismRdp({ kind: 'gaussian', noiseMultiplier: 1.3 }), rdpSubsampledGaussian(1, 1.3));
    const eps = epsilonOfRounds(Array.from({ length: 7 }, () => [{ kind: 'gaussian' as const, noiseMultiplier: 2 }]), 1e-5).epsilon;
    assert.ok(Math.abs(eps - computeEpsilon({ noiseMultiplier: 2, samplingRate: 1, steps: 7, delta: 1e-5 }).epsilon) < 1e-12);
  });

  it('composes mixed mechanisms by adding RDP curves (composeRdp is additive with compose)', () => {
    const ddg = distributedDiscreteGaussian({ clip: 2, dimension: 500, step: 1 / 1000, sigmaSteps: 1500, minSummands: 5, beta: 0.1 });
    const acc = composeMechanisms(new RdpAccountant(), [ddg, { kind: 'gaussian', noiseMultiplier: 3 }]);
    const want = mechanismRdp(ddg).map((r, k) => r + DEFAULT_ORDERS[k] / (2 * 9));
    acc.rdp.forEach((r, k) => assert.ok(Math.abs(r - want[k]) < 1e-12 * Math.max(1, want[k])));
    assert.throws(() => new RdpAccountant().composeRdp([1, 2, 3]), PrivacyParameterError);
    assert.throws(() => new RdpAccountant([2, 3]).composeRdp([1, -1]), PrivacyParameterError);
  });

  it('the clip bit (sensitivity 1/2) is a Gaussian with z = 2σ; adaptive clipping\'s split composes back to z', () => {
    assert.deepEqual(clipBitMechanism(0.75), { kind: 'gaussian', noiseMultiplier: 1.5 });
    assert.deepEqual(gaussianMechanism({ stddev: 3, sensitivity: 2 }), { kind: 'gaussian', noiseMultiplier: 1.5 });
    const z = 1;
    const sb = 2;
    const zDelta = (z ** -2 - (2 * sb) ** -2) ** -0.5;
    const split = epsilonOfRounds([[{ kind: 'gaussian', noiseMultiplier: zDelta }, clipBitMechanism(sb)]], 1e-5).epsilon;
    assert.ok(Math.abs(split - epsilonOfRounds([[{ kind: 'gaussian', noiseMultiplier: z }]], 1e-5).epsilon) < 1e-9);
  });

  it('reports the Gaussian-equivalent multiplier of a DDG release (for display)', () => {
    const m = distributedDiscreteGaussian({ clip: 1, dimension: 100, step: 1 / 1000, sigmaSteps: 1000, minSummands: 4 });
    const z = equivalentNoiseMultiplier(m);
    assert.ok(z < 2 && z > 2 * (1000 / (1000 + 10)) - 1e-12); // √4·1000 / (1000 + √100)
  });

  it('parses what a ledger file holds and refuses anything else with a reason', () => {
    const m = distributedDiscreteGaussian({ clip: 1, dimension: 100, step: 0.01, sigmaSteps: 50, minSummands: 3, beta: 0.5, maxWeight: 1 });
    assert.deepEqual(parseMechanism(JSON.parse(JSON.stringify(m))), m);
    assert.deepEqual(parseMechanism({ kind: 'gaussian', noiseMultiplier: 2 }), { kind: 'gaussian', noiseMultiplier: 2 });
    assert.throws(() => parseMechanism({ kind: 'laplace', scale: 1 }), /unknown kind "laplace"/);
    assert.throws(() => parseMechanism({ kind: 'gaussian', noiseMultiplier: '2' }), /"noiseMultiplier" must be a number/);
    assert.throws(() => parseMechanism({ kind: 'gaussian', noiseMultiplier: 0 }), PrivacyParameterError);
    assert.throws(() => parseMechanism({ ...m, sigmaSteps: 0.2 }), /below 1\/2/);
    assert.throws(() => parseMechanism(null), /not an object/);
  });
});
