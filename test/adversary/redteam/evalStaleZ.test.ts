/**
 * Red team: the evaluation of DP round r is paid with r's fit (at r's z), but noised with the
 * experiment's *latest recorded* z (ExperimentSecurity.known().noiseMultiplier), which the
 * record() of round r+1 overwrites before r+1 charges anything. So:
 *   round 1 at z = 0.5 (pins the experiment's lowest z), round 2 at z = 10⁶ (charged at 10⁶,
 *   evaluation of round 2 "paid"), round 3 at z = 0.5 with a model that fails to train
 *   (recorded, never charged), then eval_ins for round 2: released with stddev 0.5/minExamples
 *   while the ledger paid for 10⁶/minExamples.
 * With stddev 10⁶/6 the released accuracy is 0 or 1 (clamped) with probability 1 − 10⁻⁶; a
 * value strictly inside (0, 1) shows the smaller noise.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { zooModel } from '../../../models/zoo.js';
import { initParams } from '../../../shared/model/initParams.js';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import { defaultPolicy, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = (z: number) => ({ mode: 'local' as const, clip: 1, noiseMultiplier: z, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 });
const TABULAR = zooModel('mlp-tabular', { numFeatures: 13 });

describe('red team: a DP evaluation noised with a later round\'s z (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  const policy = defaultPolicy();
  policy.privacy.allowNonDp = false;
  policy.release = { ...policy.release, minExamples: 6, dp: { exampleCount: 'withheld', metrics: 'noised' } };
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { beforeStart: (dir) => writeSitePolicy(dir, policy) });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(edge.output().slice(-6000));
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const fitAnswer = (round: number) => waitFor(`round ${round}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === 'exp-z' && x.m.round === round)?.m, 60_000, 20);

  it('the evaluation of round 2 carries round 2\'s noise', async () => {
    for (const [round, z] of [[1, 0.5], [2, 1e6]] as const) {
      const { message, payload } = fitIns('exp-z', round, { privacy: DP(z) });
      await fake.sendTo('hosp', message, payload);
      assert.equal((await fitAnswer(round)).type, 'fit_res');
    }
    await fake.sendTo('hosp', { type: 'fit_ins', experiment: 'exp-z', round: 3, modelVersion: VERSION, spec: TABULAR, config: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 }, privacy: DP(0.5) }, float32Bytes(initParams(TABULAR, 1)));
    const f3 = await fitAnswer(3);
    assert.equal(f3.type, 'fit_failed');
    await fake.sendTo('hosp', { type: 'eval_ins', experiment: 'exp-z', round: 2, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const a = await waitFor('the evaluation', () => fake.receivedFrom.find((x) => (x.m.type === 'eval_res' || x.m.type === 'eval_failed') && x.m.experiment === 'exp-z' && x.m.round === 2)?.m, 30_000, 20);
    if (a.type !== 'eval_res') return; // refused: defended
    const v = a.metrics.accuracy!;
    assert.ok(v === 0 || v === 1, `HOLE: round 2's evaluation released ${v} — noise of z = 0.5 (round 3's), paid at z = 10⁶`);
  });
});
