/**
 * Red team: `fedmed edge approve EXP --settings PREFIX` accepts a prefix of 8+ hex digits
 * (32 bits) and approves whatever the experiment *now* asks with, if its hash starts with the
 * prefix. The coordinator picks both the settings the operator reviews and the ones it swaps
 * in, so it needs only a 32-bit *birthday* collision: ~2¹⁷ variants of each (varying a digit of
 * the learning rate nobody reads that closely) — well under a second here. (The 12 digits
 * `edge experiments` prints are 48 bits: 2²⁴ variants per side, seconds natively.)
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { experimentSettings, settingsHash } from '../../../edge-client/policy/experimentApprovals.js';
import { defaultPolicy, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import type { MessageOf } from '../../../shared/protocol/messages.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { runCli } from '../../helpers/runCli.js';
import { fitIns, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';

const PREFIX = 8;
const REVIEWED = { mode: 'local' as const, clip: 1, noiseMultiplier: 4, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };
const SWAPPED = { ...REVIEWED, noiseMultiplier: 0.05 };

function message(privacy: typeof REVIEWED, learningRate: number, round: number) {
  return fitIns('exp-p', round, { privacy, config: { epochs: 1, batchSize: 32, learningRate, optimizer: 'adam', proxMu: 0, seed: round } });
}

/** Two learning rates near 0.001: one for the reviewed settings, one for the swapped ones, whose settings hashes share the first PREFIX hex digits. */
function collide(): { reviewedLr: number; swappedLr: number } {
  const base = (p: typeof REVIEWED) => experimentSettings(message(p, 0.001, 1).message as MessageOf<'fit_ins'>);
  const a = base(REVIEWED);
  const b = base(SWAPPED);
  const seen = new Map<string, number>();
  const lr = (i: number) => Number((0.001 + i * 1e-13).toPrecision(15));
  for (let i = 0; i < 1 << 18; i++) {
    const h = settingsHash({ ...a, training: { ...a.training, learningRate: lr(i) } }).slice(0, PREFIX);
    seen.set(h, i);
    const g = settingsHash({ ...b, training: { ...b.training, learningRate: lr(i) } }).slice(0, PREFIX);
    const hit = seen.get(g);
    if (hit !== undefined) return { reviewedLr: lr(hit), swappedLr: lr(i) };
  }
  throw new Error('no collision (unlucky): raise the search size');
}

describe('red team: a birthday collision on the approval prefix (real edge process)', function () {
  this.timeout(180_000);
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

  const ask = async (privacy: typeof REVIEWED, lr: number, round: number) => {
    const { message: m, payload } = message(privacy, lr, round);
    await fake.sendTo('hosp', m, payload);
    return waitFor(`round ${round}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === 'exp-p' && x.m.round === round)?.m, 60_000, 20);
  };

  it(`the operator approves the ${PREFIX}-digit prefix of z = 4; the coordinator's z = 0.05 with the same prefix does not train`, async () => {
    const started = Date.now();
    const { reviewedLr, swappedLr } = collide();
    const searchMs = Date.now() - started;
    assert.equal((await ask(REVIEWED, reviewedLr, 1)).type, 'fit_failed');
    const listed = JSON.parse((await runCli(['edge', 'experiments', '--state-dir', stateDir, '--json'])).stdout) as { pending: { hash: string; settings: { privacy: { noiseMultiplier: number } } }[] };
    assert.equal(listed.pending[0].settings.privacy.noiseMultiplier, 4, 'the operator reviews z = 4');
    const reviewed = listed.pending[0].hash.slice(0, PREFIX);
    assert.equal((await ask(SWAPPED, swappedLr, 2)).type, 'fit_failed'); // swapped in before the operator types the command
    const ok = await runCli(['edge', 'approve', 'exp-p', '--state-dir', stateDir, '--settings', reviewed]);
    const r = await ask(SWAPPED, swappedLr, 3);
    assert.notEqual(r.type, 'fit_res', `HOLE: trained at z = 0.05 (lr ${swappedLr}) after the operator approved "${reviewed}", the prefix of the reviewed z = 4 (lr ${reviewedLr}); collision found in ${searchMs} ms; ${ok.stdout.trim()}`);
  });
});
