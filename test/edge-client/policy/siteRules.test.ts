import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExperimentApprovals } from '../../../edge-client/policy/experimentApprovals.js';
import { SiteRules } from '../../../edge-client/policy/siteRules.js';
import { defaultPolicy, policyFromFlags, writeSitePolicy, type SitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import type { MessageOf } from '../../../shared/protocol/messages.js';
import { fitIns, secaggParams } from '../../adversary/harness.js';
import { makeTempDir } from '../../helpers/paths.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 1, delta: 1e-5 };

describe('edge-client/policy/siteRules (every rule in one place, in order)', () => {
  let t: ReturnType<typeof makeTempDir>;
  let logged: { event: string; detail?: Record<string, unknown> }[];
  const rules = (fallback: SitePolicy = defaultPolicy()) => new SiteRules(t.dir, fallback, (event, detail) => logged.push({ event, detail }));
  const fit = (experiment: string, round: number, extra: Partial<MessageOf<'fit_ins'>> = {}) => fitIns(experiment, round, extra).message;
  beforeEach(() => {
    t = makeTempDir();
    logged = [];
  });
  afterEach(() => t.cleanup());

  it('refuses by kind: policy (protection, DP, modes, z, data), approval, budget — nothing planned', () => {
    const r = rules(policyFromFlags({ privacyBudget: 3, privacyMinNoiseMultiplier: 1, requireSecurity: 'secure' }));
    const kind = (m: MessageOf<'fit_ins'>, n = 100) => {
      const d = r.fit(m, n);
      return 'refusal' in d ? `${d.refusal.kind}: ${d.refusal.reason}` : 'accepted';
    };
    assert.match(kind(fit('e', 1, { privacy: DP })), /^policy: this site requires secure aggregation \(SecAgg\+ or CKKS\) and the round is not securely aggregated/);
    const secure = { security: secaggParams(3) };
    assert.match(kind(fit('e', 1, secure)), /^policy: this site requires differential privacy/);
    assert.match(kind(fit('e', 1, { ...secure, privacy: { ...DP, mode: 'central' } })), /^policy: privacy mode "central" leaves the noise to the coordinator/);
    assert.match(kind(fit('e', 1, { ...secure, privacy: { ...DP, noiseMultiplier: 0.5 } })), /^policy: noise multiplier 0.5 is below this site's minimum 1/);
    const accepted = r.fit(fit('e', 1, { ...secure, privacy: DP }), 100);
    assert.ok('plan' in accepted);
    // z = 2 costs ε ≈ 2.3 at δ = 1e-5 per round: the second round would exceed ε = 3.
    r.charge(fit('e', 1), accepted.plan, [{ kind: 'gaussian', noiseMultiplier: 2 }]);
    r.security.record(fit('e', 1, { ...secure, privacy: DP }));
    assert.match(kind(fit('e', 2, { ...secure, privacy: DP })), /^privacy_budget: privacy budget exhausted/);
    assert.match(kind(fit('e', 1, { ...secure, privacy: DP })), /^policy: this site already trained for round 1/);
  });

  it('requires approval of the exact settings; a change of settings asks again; a rejection is final for those settings', () => {
    writeSitePolicy(t.dir, { ...defaultPolicy(), experiments: { approval: 'required' } });
    const r = rules();
    const a = new ExperimentApprovals(t.dir);
    const d1 = r.fit(fit('exp', 1, { privacy: DP }), 100);
    assert.ok('refusal' in d1 && d1.refusal.kind === 'approval_pending');
    const [pending] = a.listPending();
    assert.equal(pending.settings.experiment, 'exp');
    assert.deepEqual(pending.settings.privacy, { mode: 'local', noiseMultiplier: 2, delta: 1e-5, clip: 1 });
    assert.throws(() => a.decide('exp', 'approved', pending.hash.slice(0, 12)), /must be the full 64-digit settings hash/);
    assert.throws(() => a.decide('exp', 'approved', 'f'.repeat(64)), /now asks with settings/);
    a.decide('exp', 'approved', pending.hash, 'reviewed by the DPO');
    assert.ok('plan' in r.fit(fit('exp', 1, { privacy: DP }), 100));
    assert.deepEqual(a.listPending(), []);
    // The coordinator lowers z: the approval no longer covers it.
    const d2 = r.fit(fit('exp', 2, { privacy: { ...DP, noiseMultiplier: 0.3 } }), 100);
    assert.ok('refusal' in d2 && d2.refusal.kind === 'approval_pending');
    a.decide('exp', 'rejected', a.listPending()[0].hash, 'z too low');
    const d3 = r.fit(fit('exp', 2, { privacy: { ...DP, noiseMultiplier: 0.3 } }), 100);
    assert.ok('refusal' in d3 && d3.refusal.kind === 'experiment_rejected' && /z too low/.test(d3.refusal.reason));
    assert.throws(() => a.decide('other', 'approved', 'a'.repeat(64)), /no experiment "other" has asked this site/);
  });

  it('re-reads the policy each round: a change is logged; an invalid file refuses every round, naming the field', () => {
    const r = rules();
    assert.ok('plan' in r.fit(fit('exp', 1), 100));
    writeSitePolicy(t.dir, { ...defaultPolicy(), release: { ...defaultPolicy().release, minExamples: 500 } });
    const d = r.fit(fit('exp', 2), 100);
    assert.ok('refusal' in d && /has fewer local training examples than its policy's minimum of 500/.test(d.refusal.reason));
    assert.equal(logged.filter((l) => l.event === 'policy_changed').length, 1);
    writeFileSync(join(t.dir, 'policy.json'), JSON.stringify({ ...defaultPolicy(), security: { required: 'sometimes', minGroupSize: 3, minThresholdFraction: 0 } }));
    const bad = r.fit(fit('exp', 2), 100);
    assert.ok('refusal' in bad && bad.refusal.kind === 'policy' && /field security\.required/.test(bad.refusal.reason));
  });

  it('shapes what leaves besides the update: exact, bucketed or withheld without DP; withheld or noised (and charged) under DP', () => {
    const metrics = { loss: 0.7, accuracy: 0.61 };
    const plain = (release: Partial<SitePolicy['release']>) => {
      const r = new SiteRules(t.dir, { ...defaultPolicy(), release: { ...defaultPolicy().release, ...release } }, () => {});
      const d = r.fit(fit(`e${Math.random()}`, 1), 137);
      assert.ok('plan' in d);
      return r.shapeFit(fit('e', 1), d.plan, 137, metrics);
    };
    assert.deepEqual(plain({}), { numExamples: 137, metrics, mechanisms: [] });
    assert.deepEqual(plain({ exampleCount: 'bucketed', bucketSize: 50, metrics: 'withheld' }), { numExamples: 100, mechanisms: [] });
    assert.deepEqual(plain({ exampleCount: 'withheld' }), { numExamples: 1, metrics, mechanisms: [] });

    // Under DP, by default nothing but the update leaves; the adaptive-clipping bit is charged at z ≥ its own noise.
    const dp = new SiteRules(t.dir, policyFromFlags({ privacyBudget: 100 }), () => {});
    const adaptive = fit('dp', 1, { privacy: { ...DP, countNoiseStddev: 0.01 } });
    const d = dp.fit(adaptive, 137);
    assert.ok('plan' in d);
    assert.equal(d.plan.clipBitStddev, 1, 'the coordinator asked for 0.01; the bit carries z/2 = 1 (z = 2 on sensitivity 1/2)');
    assert.deepEqual(dp.shapeFit(adaptive, d.plan, 137, metrics), { numExamples: 1, mechanisms: [{ kind: 'gaussian', noiseMultiplier: 2 }] });

    // Noised: the count gets N(0, z²), the accuracy N(0, (z/minExamples)²); 3 more Gaussian releases charged.
    const noisedPolicy = policyFromFlags({ privacyBudget: 1e9 });
    noisedPolicy.release = { ...noisedPolicy.release, minExamples: 40, dp: { exampleCount: 'noised', metrics: 'noised' } };
    const noised = new SiteRules(t.dir, noisedPolicy, () => {});
    const m = fit('dp2', 1, { privacy: DP });
    const plan = noised.fit(m, 137);
    assert.ok('plan' in plan);
    const counts: number[] = [];
    const accs: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      // The released accuracy is that of the received model on the training data (0.5), not the trained one's (0.9).
      const s = noised.shapeFit(m, plan.plan, 137, { loss: 0.7, accuracy: 0.9 }, 0.5);
      assert.equal(s.metrics!.loss, undefined, 'the loss is unbounded: withheld');
      assert.equal(s.mechanisms.length, 3);
      counts.push(s.numExamples);
      accs.push(s.metrics!.accuracy!);
    }
    // 20,000 samples: the sample stddev is within 3% of σ with probability > 1 − 1e-20 (χ² tail), whatever the seed.
    const sd = (xs: number[]) => {
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      return Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    };
    // N(0, 4) rounded to an integer: stddev √(4 + 1/12).
    assert.ok(Math.abs(sd(counts) - Math.sqrt(4 + 1 / 12)) < 0.061, `count noise ${sd(counts)}`);
    assert.ok(Math.abs(sd(accs) - 2 / 40) < 0.0015, `accuracy noise ${sd(accs)}, expected z/minExamples = 0.05`);
  });

  it('an evaluation of a DP experiment leaves only noised, once, and only for a round the site trained in', () => {
    const p = policyFromFlags({ privacyBudget: 100 });
    const withheld = new SiteRules(t.dir, p, () => {});
    const ev = (experiment: string, round: number): MessageOf<'eval_ins'> => ({ type: 'eval_ins', experiment, round, modelVersion: 'v', spec: {} });
    assert.match(JSON.stringify(withheld.evaluation(ev('dp', 1), 100)), /withholds metrics of differentially private experiments/);
    p.release = { ...p.release, minExamples: 20, dp: { exampleCount: 'withheld', metrics: 'noised' } };
    const r = new SiteRules(t.dir, p, () => {});
    r.security.record(fit('dp', 3, { privacy: DP }));
    // Trained in round 3, but the ledger has not charged it (training still running, or it failed): nothing.
    assert.match(JSON.stringify(r.evaluation(ev('dp', 3), 100)), /only for a round whose release its ledger charged/);
    const plan = r.fit(fit('dp', 4, { privacy: DP }), 100);
    assert.ok('plan' in plan);
    r.charge(fit('dp', 4, { privacy: DP }), plan.plan, [{ kind: 'gaussian', noiseMultiplier: 2 }]);
    assert.match(JSON.stringify(r.evaluation(ev('dp', 3), 100)), /only for a round whose release its ledger charged/);
    assert.deepEqual(r.evaluation(ev('dp', 4), 100), { release: 'noised', accuracyStddev: 0.1 });
    assert.match(JSON.stringify(r.evaluation(ev('dp', 4), 10)), /fewer local evaluation examples than its policy's minimum of 20/);
    r.security.recordEvaluation('dp', 4);
    assert.match(JSON.stringify(r.evaluation(ev('dp', 4), 100)), /already released the evaluation of round 4/);
    // Without DP, as the policy says.
    const open = new SiteRules(t.dir, defaultPolicy(), () => {});
    open.security.record(fit('plain', 1));
    const exact = open.evaluation(ev('plain', 1), 100);
    assert.ok('release' in exact && exact.release === 'exact' && exact.numExamples(137) === 137);
  });
});
