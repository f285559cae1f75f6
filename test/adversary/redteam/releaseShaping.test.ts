/**
 * Red team: release shaping (site policy `release`) on paths other than a plain fit:
 *   - the example count of an *evaluation* of a non-DP experiment, under exampleCount
 *     "withheld" / "bucketed" (shapeFit applies it to fits; evaluate sends r.numExamples)
 *   - a DP experiment in mode "central" on a site without a budget: the site charges nothing
 *     (it ran no mechanism), and shapeFit then shapes it as if it were not DP — exact count and
 *     training metrics for a DP experiment, against release.dp (withheld by default)
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import { defaultPolicy, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

describe('red team: release shaping outside the plain fit (real edge processes)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let withheld: EdgeUnderTest;
  let bucketed: EdgeUnderTest;
  before(async () => {
    await fake.start();
    const w = defaultPolicy();
    w.release = { ...w.release, exampleCount: 'withheld' };
    withheld = await startEdge(fake, t.dir, 'withheld', { beforeStart: (dir) => writeSitePolicy(dir, w) });
    const b = defaultPolicy();
    b.release = { ...b.release, exampleCount: 'bucketed', bucketSize: 100 };
    bucketed = await startEdge(fake, t.dir, 'bucketed', { seed: 2, beforeStart: (dir) => writeSitePolicy(dir, b) });
    await waitEvent(withheld, 'connected');
    await waitEvent(bucketed, 'connected');
  });
  after(async () => {
    await stopProc(withheld);
    await stopProc(bucketed);
    await fake.close();
    t.cleanup();
  });

  const evalRes = (site: string, experiment: string) => waitFor(`${site}'s answer`, () => fake.receivedFrom.find((x) => x.site === site && (x.m.type === 'eval_res' || x.m.type === 'eval_failed') && x.m.experiment === experiment)?.m, 30_000, 20);

  it('exampleCount "withheld": an evaluation does not send the exact validation count', async () => {
    await fake.sendTo('withheld', { type: 'eval_ins', experiment: 'exp-e', round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const a = await evalRes('withheld', 'exp-e');
    if (a.type === 'eval_res') assert.equal(a.numExamples, 1, `HOLE: eval_res.numExamples = ${a.numExamples} under release.exampleCount = "withheld"`);
  });

  it('exampleCount "bucketed" (100): an evaluation does not send the exact validation count', async () => {
    await fake.sendTo('bucketed', { type: 'eval_ins', experiment: 'exp-e', round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const a = await evalRes('bucketed', 'exp-e');
    if (a.type === 'eval_res') assert.ok(a.numExamples === 1 || a.numExamples % 100 === 0, `HOLE: eval_res.numExamples = ${a.numExamples} under release.exampleCount = "bucketed" (100)`);
  });

  it('a "central" DP experiment on a site without a budget: count and training metrics follow release.dp (withheld)', async () => {
    const { message, payload } = fitIns('exp-central', 1, { privacy: { mode: 'central', clip: 1, noiseMultiplier: 1, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 } });
    await fake.sendTo('bucketed', message, payload);
    const r = await waitFor('the answer', () => fake.receivedFrom.find((x) => x.site === 'bucketed' && (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === 'exp-central')?.m, 60_000, 20);
    if (r.type === 'fit_res') assert.deepEqual({ n: r.numExamples, metrics: r.metrics }, { n: 1, metrics: {} }, `HOLE: a DP (central) experiment's fit_res carries ${JSON.stringify({ n: r.numExamples, metrics: r.metrics })}`);
  });
});
