/**
 * Red team: the operator reviews an experiment's pending settings, then runs
 * `fedmed edge approve EXP` — without `--settings` (it is optional). In between, the coordinator
 * re-asks with other settings (here: z = 4 → z = 0.05); the pending entry is replaced and the
 * approval lands on settings nobody reviewed.
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
import { fitIns, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';

const REVIEWED = { mode: 'local' as const, clip: 1, noiseMultiplier: 4, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };
const SWAPPED = { ...REVIEWED, noiseMultiplier: 0.05 };

describe('red team: settings swapped between the operator\'s review and `edge approve` (real edge process)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let stateDir = '';
  const policy = defaultPolicy();
  policy.experiments.approval = 'required';
  policy.privacy.allowNonDp = false;
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

  const ask = async (round: number, privacy: MessageOf<'fit_ins'>['privacy']) => {
    const { message, payload } = fitIns('exp-r', round, { privacy });
    await fake.sendTo('hosp', message, payload);
    return waitFor(`round ${round}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === 'exp-r' && x.m.round === round)?.m, 60_000, 20);
  };

  it('the swapped settings do not train', async () => {
    assert.equal((await ask(1, REVIEWED)).type, 'fit_failed');
    const listed = JSON.parse((await runCli(['edge', 'experiments', '--state-dir', stateDir, '--json'])).stdout) as { pending: { hash: string; settings: { privacy: { noiseMultiplier: number } } }[] };
    assert.equal(listed.pending[0].settings.privacy.noiseMultiplier, 4, 'the operator reviews z = 4');
    assert.equal((await ask(2, SWAPPED)).type, 'fit_failed'); // the coordinator re-asks, with z = 0.05
    const ok = await runCli(['edge', 'approve', 'exp-r', '--state-dir', stateDir]);
    const r = await ask(3, SWAPPED);
    assert.notEqual(r.type, 'fit_res', `HOLE: trained at z = 0.05 after the operator reviewed z = 4 and approved (${ok.stdout.trim()})`);
  });
});
