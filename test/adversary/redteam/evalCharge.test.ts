/**
 * Red team: the evaluation of a DP round is "paid with the fit of the same round" (siteRules.ts
 * `evaluation`): it is allowed when ExperimentSecurity's lastRound equals the round. But
 * lastRound is recorded when training *starts* (edgeClient.fit → security.record), not when the
 * ledger is charged. So an eval_ins for a round whose fit never charged (it failed after the
 * record, or is still in flight) gets a noised accuracy that no ledger entry pays for.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { zooModel } from '../../../models/zoo.js';
import { initParams } from '../../../shared/model/initParams.js';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import { policyFromFlags, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };
/** A valid spec whose input does not fit the site's 28x28 images: training fails after the round was recorded. */
const TABULAR = zooModel('mlp-tabular', { numFeatures: 13 });

describe('red team: DP evaluations that no ledger entry pays for (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let stateDir = '';
  const policy = policyFromFlags({ privacyBudget: 100 });
  policy.release = { ...policy.release, dp: { exampleCount: 'withheld', metrics: 'noised' } };
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

  const ledger = () => (existsSync(join(stateDir, 'privacy-ledger.json')) ? (JSON.parse(readFileSync(join(stateDir, 'privacy-ledger.json'), 'utf8')) as { entries: { experiment: string; round: number }[] }).entries : []);
  const charged = (experiment: string, round: number) => ledger().some((e) => e.experiment === experiment && e.round === round);
  it('sanity: a DP round that trains and charges, then its evaluation once', async () => {
    const { message, payload } = fitIns('exp-ok', 1, { privacy: DP });
    await fake.sendTo('hosp', message, payload);
    await waitFor('fit_res', () => fake.of('fit_res', 'hosp').find((m) => m.experiment === 'exp-ok'), 60_000, 20);
    assert.ok(charged('exp-ok', 1));
    await fake.sendTo('hosp', { type: 'eval_ins', experiment: 'exp-ok', round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    await waitFor('eval_res', () => fake.of('eval_res', 'hosp').find((m) => m.experiment === 'exp-ok'), 30_000, 20);
  });

  it('a fit that fails after it was recorded (training error) does not make its round\'s evaluation free — repeated over 3 rounds', async () => {
    const leaked: number[] = [];
    for (let round = 1; round <= 3; round++) {
      // fit_ins with a spec the local data cannot train: recorded as this round's training, then fit_failed, nothing charged.
      await fake.sendTo('hosp', { type: 'fit_ins', experiment: 'exp-free', round, modelVersion: VERSION, spec: TABULAR, config: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 }, privacy: DP }, float32Bytes(initParams(TABULAR, 1)));
      await waitFor('fit_failed', () => fake.of('fit_failed', 'hosp').find((m) => m.experiment === 'exp-free' && m.round === round), 60_000, 20);
      assert.equal(charged('exp-free', round), false, 'nothing was released for the fit, nothing charged');
      // Now the real model of the DP experiment, under the same id and round.
      await fake.sendTo('hosp', { type: 'eval_ins', experiment: 'exp-free', round, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
      const a = await waitFor('the eval answer', () => fake.receivedFrom.find((x) => x.site === 'hosp' && (x.m.type === 'eval_res' || x.m.type === 'eval_failed' || (x.m.type === 'fit_failed' && x.m.refused)) && x.m.experiment === 'exp-free' && x.m.round === round)?.m, 30_000, 20);
      if (a.type === 'eval_res') leaked.push(a.metrics.accuracy!);
    }
    assert.deepEqual(leaked, [], `HOLE: ${leaked.length} noised evaluation accuracies released for rounds the ledger never charged (${JSON.stringify(ledger().filter((e) => e.experiment === 'exp-free'))}): ${JSON.stringify(leaked)}`);
  });

  it('an eval_ins for a round whose fit is still in flight is not released before the round is charged', async () => {
    const { message, payload } = fitIns('exp-inflight', 1, { privacy: DP, config: { epochs: 3, batchSize: 4, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 } });
    await fake.sendTo('hosp', message, payload);
    await fake.sendTo('hosp', { type: 'eval_ins', experiment: 'exp-inflight', round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const a = await waitFor('the eval answer', () => fake.receivedFrom.find((x) => x.site === 'hosp' && (x.m.type === 'eval_res' || x.m.type === 'eval_failed' || (x.m.type === 'fit_failed' && x.m.refused)) && x.m.experiment === 'exp-inflight')?.m, 30_000, 5);
    const chargedWhenReleased = charged('exp-inflight', 1);
    await settled(edge, 'exp-inflight');
    if (a.type === 'eval_res') assert.ok(chargedWhenReleased, `HOLE: eval_res (accuracy ${a.metrics.accuracy}) left before the ledger held the round's charge (the fit was still training)`);
  });
});
