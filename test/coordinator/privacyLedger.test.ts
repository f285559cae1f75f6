import assert from 'node:assert/strict';
import { experimentPrivacy, roundMechanisms } from '../../coordinator/rounds/privacyLedger.js';
import type { ExperimentRecord, RoundRecord } from '../../coordinator/store/storeSchema.js';
import { zooModel } from '../../models/zoo.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { updateNoiseMultiplier } from '../../shared/privacy/adaptiveClipping.js';
import { clipBitMechanism, distributedDiscreteGaussian, epsilonOfRounds } from '../../shared/privacy/privacyMechanism.js';
import type { PrivacyConfig } from '../../shared/privacy/privacyConfig.js';
import { computeEpsilon } from '../../shared/privacy/rdpAccountant.js';
import { quantStep } from '../../shared/secure/secagg/secaggParams.js';

const spec = zooModel('logreg', { numFeatures: 13, numClasses: 2 });

function experiment(privacy: PrivacyConfig, extra: Partial<ExperimentRecord['config']> = {}): ExperimentRecord {
  return { id: 'e1', name: 'e1', createdAt: '', config: { privacy, ...extra } as ExperimentRecord['config'], spec, currentVersion: 'v0', roundsCompleted: 0 };
}

function round(n: number, privacy: NonNullable<RoundRecord['privacy']>, over: Partial<RoundRecord> = {}): RoundRecord {
  const sites = ['a', 'b', 'c', 'd'].map((site) => ({ site, phase: 'fit' as const, status: 'done' as const }));
  return { experiment: 'e1', round: n, status: 'completed', startedAt: '', endedAt: '', reason: null, sites, fitMetrics: null, evalMetrics: null, versionId: null, timings: {}, privacy, bytesSent: 0, bytesReceived: 0, ...over };
}

const base = { noiseMultiplier: 2, samplingRate: 0.1, clip: 1, delta: 1e-5, charged: true };

describe('coordinator/rounds/privacyLedger (the federation ledger, truthful about sampling)', () => {
  it('accounts every charged round at q = 1 whatever its sampling rate, and says so', () => {
    const exp = experiment({ mode: 'local', clip: 1, noiseMultiplier: 2, delta: 1e-5 });
    const rounds = [1, 2, 3].map((n) => round(n, { ...base, mode: 'local' }));
    rounds.push(round(4, { ...base, mode: 'local', charged: false }));
    const p = experimentPrivacy(exp, rounds);
    assert.deepEqual(p.accounting, { sampling: 'fixed-size, public', amplification: false, mechanism: 'gaussian', clipBits: false, composition: 'RDP' });
    assert.equal(p.rounds.length, 3);
    for (const [i, r] of p.rounds.entries()) {
      assert.ok(Math.abs(r.epsilon! - computeEpsilon({ noiseMultiplier: 2, samplingRate: 1, steps: i + 1, delta: 1e-5 }).epsilon) < 1e-12);
      assert.equal(r.samplingRate, 0.1); // reported, not used
      assert.deepEqual(r.mechanisms, [{ kind: 'gaussian', noiseMultiplier: 2 }]);
    }
    assert.equal(p.epsilon, p.rounds[2].epsilon);
    // Far more than the amplified figure a sampling rate of 0.1 would have claimed.
    assert.ok(p.epsilon! > 3 * computeEpsilon({ noiseMultiplier: 2, samplingRate: 0.1, steps: 3, delta: 1e-5 }).epsilon);
    assert.deepEqual(experimentPrivacy({ ...exp, config: { ...exp.config, privacy: undefined } }, rounds), { enabled: false, mode: null, delta: null, noiseMultiplier: null, clip: null, epsilon: null, accounting: null, rounds: [] });
  });

  it('central mode with adaptive clipping: the update at z_Δ and the bit sum at σ_b compose back to exactly z', () => {
    const exp = experiment({ mode: 'central', clip: 1, noiseMultiplier: 1.5, delta: 1e-5, adaptiveClipping: { countStddev: 2 } });
    const r = round(1, { ...base, noiseMultiplier: 1.5, mode: 'central' });
    assert.deepEqual(roundMechanisms(exp, r), [{ kind: 'gaussian', noiseMultiplier: updateNoiseMultiplier(1.5, 2) }, clipBitMechanism(2)]);
    const p = experimentPrivacy(exp, [r]);
    assert.equal(p.accounting?.clipBits, true);
    assert.ok(Math.abs(p.epsilon! - computeEpsilon({ noiseMultiplier: 1.5, samplingRate: 1, steps: 1, delta: 1e-5 }).epsilon) < 1e-9);
  });

  it('local mode with adaptive clipping charges each site\'s bit (seen individually) on top of the update at z', () => {
    const exp = experiment({ mode: 'local', clip: 1, noiseMultiplier: 1, delta: 1e-5, adaptiveClipping: { countStddev: 0.6 } });
    const ms = roundMechanisms(exp, round(1, { ...base, noiseMultiplier: 1, mode: 'local' }));
    assert.deepEqual(ms, [{ kind: 'gaussian', noiseMultiplier: 1 }, clipBitMechanism(0.6)]);
  });

  it('distributed mode under SecAgg+: the distributed discrete Gaussian with the recorded quantisation, size and threshold', () => {
    const exp = experiment({ mode: 'distributed', clip: 1, noiseMultiplier: 1, delta: 1e-5 }, { security: 'secagg', secagg: { bits: 20, range: 0.5 } });
    const ddg = { dimension: 1_000_000, bits: 16, range: 1, threshold: 3, maxWeight: 1, beta: Math.exp(-0.5) };
    const recorded = round(1, { ...base, noiseMultiplier: 1, mode: 'distributed', ddg });
    const step = quantStep(16, 1);
    const want = distributedDiscreteGaussian({ clip: 1, dimension: 1_000_000, step, sigmaSteps: 1 / Math.sqrt(3) / step, minSummands: 3, beta: Math.exp(-0.5), maxWeight: 1 });
    assert.deepEqual(roundMechanisms(exp, recorded), [want]);
    const p = experimentPrivacy(exp, [recorded]);
    assert.equal(p.accounting?.mechanism, 'distributed-discrete-gaussian');
    const gaussian = computeEpsilon({ noiseMultiplier: 1, samplingRate: 1, steps: 1, delta: 1e-5 }).epsilon;
    assert.ok(p.epsilon! > gaussian && p.epsilon! < gaussian * 1.01, `${p.epsilon} vs ${gaussian}`);
    // An older record: the threshold from the round's security record, the rest from the experiment.
    const older = round(1, { ...base, noiseMultiplier: 1, mode: 'distributed' }, { security: { mode: 'secagg', threshold: 3, contributors: 4 } });
    const step20 = quantStep(20, 0.5);
    assert.deepEqual(roundMechanisms(exp, older), [distributedDiscreteGaussian({ clip: 1, dimension: layoutOf(spec).size, step: step20, sigmaSteps: 1 / Math.sqrt(3) / step20, minSummands: 3, beta: 0, maxWeight: 1 })]);
    assert.ok(Math.abs(experimentPrivacy(exp, [older]).epsilon! - epsilonOfRounds([roundMechanisms(exp, older)], 1e-5).epsilon) < 1e-12);
  });

  it('a round it cannot account turns ε into null with the reason, instead of a wrong number', () => {
    const exp = experiment({ mode: 'distributed', clip: 1, noiseMultiplier: 1, delta: 1e-5 }, { security: 'secagg', secagg: { bits: 2, range: 1 } });
    const p = experimentPrivacy(exp, [round(1, { ...base, noiseMultiplier: 1, mode: 'distributed' }, { security: { mode: 'secagg', threshold: 9 } })]);
    assert.equal(p.epsilon, null);
    assert.match(p.problem!, /round 1: .*below 1\/2/);
    assert.equal(p.rounds[0].epsilon, null);
  });
});
