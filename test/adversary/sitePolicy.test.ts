/**
 * The site policy against a coordinator that asks for more than the hospital allows (real edge
 * process, scripted coordinator): every refusal comes back as `fit_failed` with its kind and the
 * reason, nothing else leaves; approval is by the hospital's own command on the exact settings;
 * under DP the example count and metrics leave only as accounted noise or not at all; the policy
 * file is re-read each round; a file that does not validate keeps the edge from starting.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPolicy, policyFromFlags, writeSitePolicy, type SitePolicy } from '../../edge-client/policy/sitePolicy.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { spawnCli, stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { dataFile, fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from './harness.js';
import { float32Bytes } from '../../shared/model/modelHash.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };

describe('adversary: a coordinator asking a site for more than its policy allows (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let stateDir: string;
  const policy: SitePolicy = policyFromFlags({ privacyBudget: 4, requireApproval: true });
  policy.release = { ...policy.release, dp: { exampleCount: 'noised', metrics: 'withheld' } };
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { beforeStart: (dir) => writeSitePolicy((stateDir = dir), policy) });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const answer = (experiment: string, round: number) => waitFor(`the answer for ${experiment} round ${round}`, () => fake.receivedFrom.find((x) => ['fit_res', 'fit_failed', 'eval_res'].includes(x.m.type) && (x.m as { experiment: string }).experiment === experiment && (x.m as { round: number }).round === round)?.m, 60_000, 20);
  const send = async (experiment: string, round: number, extra: Partial<MessageOf<'fit_ins'>> = {}) => {
    const { message, payload } = fitIns(experiment, round, extra);
    await fake.sendTo('hosp', message, payload);
    return answer(experiment, round);
  };
  const refusal = (m: unknown) => {
    assert.equal((m as { type: string }).type, 'fit_failed', `expected a refusal, got ${JSON.stringify(m).slice(0, 200)}`);
    const f = m as MessageOf<'fit_failed'>;
    return `${f.refused}: ${f.reason}`;
  };

  it('an experiment without DP is refused (the site has a budget); a DP one waits for the operator, who approves it by its settings', async () => {
    assert.match(refusal(await send('exp-plain', 1)), /^policy: this site requires differential privacy/);
    assert.match(refusal(await send('exp-a', 1, { privacy: DP })), /^approval_pending: experiment exp-a awaits this site's approval \(settings [0-9a-f]{12}…\)/);
    const listed = await runCli(['edge', 'experiments', '--state-dir', stateDir, '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const { pending } = JSON.parse(listed.stdout) as { pending: { hash: string; settings: { experiment: string; privacy: unknown; security: unknown } }[] };
    assert.deepEqual(
      pending.map((p) => [p.settings.experiment, p.settings.privacy, p.settings.security]),
      [['exp-a', { mode: 'local', noiseMultiplier: 2, delta: 1e-5, clip: 1 }, { protection: 'plain' }]],
    );
    const human = await runCli(['edge', 'experiments', '--state-dir', stateDir]);
    assert.match(human.stdout, /pending {2}exp-a {2}settings [0-9a-f]{64}[^\n]*\n[^\n]*model [0-9a-f]{12} \(\d+ layers\); training 1 epoch\(s\), batch 32, adam lr 0\.001\n[^\n]*privacy: DP local, z = 2, δ = 0\.00001, clip 1; protection: plain/);
    const ok = await runCli(['edge', 'approve', 'exp-a', '--state-dir', stateDir, '--settings', pending[0].hash, '--reason', 'DPO review 2026-12-02']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(fake.of('fit_res', 'hosp').length, 0, 'nothing released before the approval');
  });

  it('under DP the update leaves with only a noised count and no metrics, and the ledger charges both', async () => {
    const r = await send('exp-a', 2, { privacy: DP });
    assert.equal(r.type, 'fit_res', JSON.stringify(r).slice(0, 300));
    const res = r as MessageOf<'fit_res'>;
    assert.deepEqual(res.metrics, {}, 'training metrics withheld (release.dp.metrics)');
    await settled(edge, 'exp-a');
    const ledger = JSON.parse(readFileSync(join(stateDir, 'privacy-ledger.json'), 'utf8')) as { entries: { experiment: string; round: number; mechanisms: unknown[] }[] };
    assert.deepEqual(
      ledger.entries.map((e) => [e.experiment, e.round, e.mechanisms]),
      [['exp-a', 2, [{ kind: 'gaussian', noiseMultiplier: 2 }, { kind: 'gaussian', noiseMultiplier: 2 }]]],
      'the update and the noised count, each at z = 2',
    );
    // The evaluation of a DP round: withheld by this policy.
    await fake.sendTo('hosp', { type: 'eval_ins', experiment: 'exp-a', round: 2, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const ev = await waitFor('the evaluation answer', () => fake.of('eval_failed', 'hosp').find((m) => m.experiment === 'exp-a' && m.round === 2), 30_000, 20);
    assert.match(`${ev.refused}: ${ev.reason}`, /^policy: this site withholds metrics of differentially private experiments/);
    assert.equal(fake.of('eval_res', 'hosp').length, 0);
    // Two Gaussians at z = 2 per round: ε = 3.19 after one round, 4.73 after two: the next round would pass ε = 4.
    assert.match(refusal(await send('exp-a', 3, { privacy: DP })), /^privacy_budget: privacy budget exhausted: this round would bring the site's total to ε = \d/);
  });

  it('applies a policy edit from the next round and logs it', async () => {
    const edited = { ...policy, experiments: { approval: 'auto' as const }, security: { ...policy.security, required: 'secagg' as const } };
    writeSitePolicy(stateDir, edited);
    assert.match(refusal(await send('exp-b', 1, { privacy: DP })), /^policy: this site requires secagg and the round is not securely aggregated/);
    await waitEvent(edge, 'policy_changed');
    // A hand edit that breaks the file: every round refused, naming the field; the edge keeps running.
    writeFileSync(join(stateDir, 'policy.json'), JSON.stringify({ ...edited, release: { ...edited.release, minExamples: 0 } }));
    assert.match(refusal(await send('exp-c', 1, { privacy: DP })), /^policy: this site's policy file is invalid; it trains for no one until it is fixed: .*field release\.minExamples: must be >= 1/);
    assert.equal(fake.of('fit_res', 'hosp').length, 1, 'only the approved round was released');
  });

  it('does not start on a policy file that does not validate, nor with policy flags beside one', async () => {
    const dir = join(t.dir, 'other');
    fake.enrolEdge(dir, 'other');
    writeFileSync(join(dir, 'policy.json'), JSON.stringify({ ...defaultPolicy(), deployment: { mode: 'sometimes', maxAccuracyDrop: null, accuracyFloor: 0 } }));
    const data = await dataFile(t.dir);
    const bad = spawnCli(['edge', 'start', '--state-dir', dir, '--data', data]);
    assert.notEqual(await bad.exited, 0);
    assert.match(bad.output(), /site policy field deployment\.mode: must be one of \["auto","manual"\]/);
    writeSitePolicy(dir, defaultPolicy());
    const both = spawnCli(['edge', 'start', '--state-dir', dir, '--data', data, '--privacy-budget', '3']);
    assert.notEqual(await both.exited, 0);
    assert.match(both.output(), /policy\.json holds this site's policy; edit it instead of passing --privacy-budget/);
  });
});
