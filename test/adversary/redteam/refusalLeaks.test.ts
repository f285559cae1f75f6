/**
 * Red team: what the *reasons* of fit_failed / eval_failed carry. Under DP with
 * release.dp.exampleCount = "withheld" the site's example counts must not leave — but refusal
 * and error texts are sent verbatim to the coordinator.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { zooModel } from '../../../models/zoo.js';
import { initParams } from '../../../shared/model/initParams.js';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import { policyFromFlags, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };
const TABULAR = zooModel('mlp-tabular', { numFeatures: 13 });
const TRAIN = 42; // 60 synthetic examples: 42 train, 6 val, 12 test
const VAL = 6;

describe('red team: example counts in refusal and error reasons (real edge processes with a privacy budget)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let small: EdgeUnderTest;
  let edge: EdgeUnderTest;
  before(async () => {
    await fake.start();
    const p = policyFromFlags({ privacyBudget: 100 });
    p.release = { ...p.release, minExamples: 50, dp: { exampleCount: 'withheld', metrics: 'noised' } };
    small = await startEdge(fake, t.dir, 'small', { beforeStart: (dir) => writeSitePolicy(dir, p) });
    const q = policyFromFlags({ privacyBudget: 100 });
    q.release = { ...q.release, minExamples: 10, dp: { exampleCount: 'withheld', metrics: 'noised' } };
    edge = await startEdge(fake, t.dir, 'hosp', { seed: 3, beforeStart: (dir) => writeSitePolicy(dir, q) });
    await waitEvent(small, 'connected');
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(small);
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const reason = (site: string, type: 'fit_failed' | 'eval_failed', experiment: string) => waitFor(`${site}'s ${type}`, () => fake.of(type, site).find((m) => m.experiment === experiment)?.reason, 60_000, 20);

  it('a DP round on a site below release.minExamples: the refusal does not state its training-example count', async () => {
    const { message, payload } = fitIns('exp-count', 1, { privacy: DP });
    await fake.sendTo('small', message, payload);
    const r = await reason('small', 'fit_failed', 'exp-count');
    assert.doesNotMatch(r, new RegExp(`\\b${TRAIN}\\b`), `HOLE: the exact local training-example count leaves in the refusal: "${r}"`);
  });

  it('the evaluation of a DP round with fewer validation examples than release.minExamples: the refusal does not state the count', async () => {
    const { message, payload } = fitIns('exp-evcount', 1, { privacy: DP });
    await fake.sendTo('hosp', message, payload);
    await settled(edge, 'exp-evcount');
    await fake.sendTo('hosp', { type: 'eval_ins', experiment: 'exp-evcount', round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const r = await reason('hosp', 'eval_failed', 'exp-evcount');
    assert.doesNotMatch(r, new RegExp(`\\b${VAL}\\b`), `HOLE: the exact local validation-example count leaves in the refusal: "${r}"`);
  });

  it('a DP fit_ins whose model does not fit the data, with batchSize ≥ n: the error text does not state the count', async () => {
    await fake.sendTo('hosp', { type: 'fit_ins', experiment: 'exp-shape', round: 1, modelVersion: VERSION, spec: TABULAR, config: { epochs: 1, batchSize: 65536, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 }, privacy: DP }, float32Bytes(initParams(TABULAR, 1)));
    const r = await reason('hosp', 'fit_failed', 'exp-shape');
    assert.doesNotMatch(r, new RegExp(`\\b${TRAIN}\\b`), `HOLE: the exact local training-example count leaves in the error text: "${r}"`);
  });
});
