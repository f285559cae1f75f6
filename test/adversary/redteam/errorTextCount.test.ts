/**
 * Red team: an experiment *without* DP on a site whose policy withholds the example count
 * (release.exampleCount = "withheld"): a model that does not fit the data, trained with
 * batchSize ≥ n, fails with the tensor shapes in its error text — [n, 28, 28, 1] — and that
 * text is the fit_failed reason the coordinator reads. (Under DP the reason is now generic.)
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
import { startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const TABULAR = zooModel('mlp-tabular', { numFeatures: 13 });

describe('red team: the example count in a training error text, without DP (real edge process)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  before(async () => {
    await fake.start();
    const p = defaultPolicy();
    p.release = { ...p.release, exampleCount: 'withheld' };
    edge = await startEdge(fake, t.dir, 'hosp', { beforeStart: (dir) => writeSitePolicy(dir, p) });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  it('the fit_failed reason does not state the local training-example count (42)', async () => {
    await fake.sendTo('hosp', { type: 'fit_ins', experiment: 'exp-shape', round: 1, modelVersion: VERSION, spec: TABULAR, config: { epochs: 1, batchSize: 65536, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: 1 } }, float32Bytes(initParams(TABULAR, 1)));
    const r = await waitFor('fit_failed', () => fake.of('fit_failed', 'hosp').find((m) => m.experiment === 'exp-shape')?.reason, 60_000, 20);
    assert.doesNotMatch(r, /\b42\b/, `HOLE: the withheld example count leaves in the error text: "${r}"`);
  });
});
