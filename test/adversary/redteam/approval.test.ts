/**
 * Red team: approval by the hash of the experiment settings (experimentApprovals.ts
 * experimentSettings). What fit_ins carries that the hash does not cover, and whether the
 * coordinator can change it after the operator approved:
 *   - security.maxWeight (SecAgg+): the weight the (noised) example count multiplies the update
 *     by; the DDG mechanism is charged with it — ε per round grows with it (up to 2^31)
 *   - security.noiseStddev, privacy.noiseStddev, privacy.samplingRate, config.seed: ignored by
 *     the site's own noise and accounting (q = 1, CSPRNG) — not privacy-relevant
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import type { MessageOf } from '../../../shared/protocol/messages.js';
import { defaultPolicy, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { runCli } from '../../helpers/runCli.js';
import { fitIns, secaggParams, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';

const DIST = { mode: 'distributed' as const, clip: 1, noiseMultiplier: 1, noiseStddev: 0, samplingRate: 0.5, delta: 1e-5 };

describe('red team: changing settings the approval hash does not cover (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let stateDir = '';
  const policy = defaultPolicy();
  policy.experiments.approval = 'required';
  policy.privacy.allowNonDp = false;
  policy.release = { ...policy.release, dp: { exampleCount: 'noised', metrics: 'withheld' } };
  const security = { ...secaggParams(3), maxWeight: 1 };
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { beforeStart: (dir) => writeSitePolicy((stateDir = dir), policy) });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(edge.output().slice(-6000));
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  /** Sends a SecAgg+ fit_ins; 'trains' if the site advertised its keys (it accepted the round), else the refusal kind. Cancels the round either way. */
  async function ask(round: number, sec: MessageOf<'fit_ins'>['security'], extra: Partial<MessageOf<'fit_ins'>> = {}): Promise<string> {
    const { message, payload } = fitIns('exp-s', round, { privacy: DIST, security: sec, ...extra });
    await fake.sendTo('hosp', message, payload);
    const r = await waitFor(`round ${round}`, () => fake.receivedFrom.find((x) => (x.m.type === 'secagg_keys' || x.m.type === 'fit_failed') && x.m.experiment === 'exp-s' && x.m.round === round)?.m, 30_000, 20);
    await fake.sendTo('hosp', { type: 'round_cancel', experiment: 'exp-s', round, reason: 'test' });
    return r.type === 'secagg_keys' ? 'trains' : String((r as MessageOf<'fit_failed'>).refused);
  }

  it('approve exp-s with maxWeight 1; the same settings then train', async () => {
    assert.equal(await ask(1, security), 'approval_pending');
    const listed = JSON.parse((await runCli(['edge', 'experiments', '--state-dir', stateDir, '--json'])).stdout) as { pending: { hash: string }[] };
    const ok = await runCli(['edge', 'approve', 'exp-s', '--state-dir', stateDir, '--settings', listed.pending[0].hash]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(await ask(2, { ...security, session: secaggParams(3).session }), 'trains');
  });

  it('the same experiment with security.maxWeight raised to 2^31 needs approval again', async () => {
    assert.equal(await ask(3, { ...security, session: secaggParams(3).session, maxWeight: 2 ** 31 }), 'approval_pending', 'HOLE: trained with an unapproved SecAgg+ maxWeight (not in the settings hash)');
  });

  it('(informational) a new config.seed / samplingRate does not need approval', async () => {
    const r = await ask(4, { ...security, session: secaggParams(3).session }, { privacy: { ...DIST, samplingRate: 1, noiseStddev: 123 }, config: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 987654 } });
    assert.equal(r, 'trains');
  });
});
