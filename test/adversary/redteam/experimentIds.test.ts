/**
 * Red team: experiment ids that collide with JavaScript object keys in the site's state files
 * (experiments.json, experiment-decisions.json are plain objects indexed by the experiment id,
 * and the wire pattern ^[A-Za-z0-9._-]+$ admits "constructor", "__proto__", "toString", …).
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import type { MessageOf } from '../../../shared/protocol/messages.js';
import { defaultPolicy, writeSitePolicy, type SitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };

function answerFor(fake: FakeCoordinator, site: string, experiment: string, round: number, types: string[]) {
  return waitFor(`${site}'s answer for ${experiment}/${round}`, () => fake.receivedFrom.find((x) => x.site === site && types.includes(x.m.type) && (x.m as { experiment: string }).experiment === experiment && (x.m as { round: number }).round === round)?.m, 30_000, 20);
}

describe('red team: experiment ids that are Object.prototype keys (real edge processes)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let budget: EdgeUnderTest;
  let dpOnly: EdgeUnderTest;
  before(async () => {
    await fake.start();
    // A site with a privacy budget (every round must be DP); release.metrics stays "exact" (for non-DP experiments, which it refuses anyway).
    budget = await startEdge(fake, t.dir, 'budget', { args: ['--privacy-budget', '50'] });
    // A site without a budget that accepts only DP experiments.
    const p: SitePolicy = defaultPolicy();
    p.privacy.allowNonDp = false;
    dpOnly = await startEdge(fake, t.dir, 'dponly', { seed: 2, beforeStart: (dir) => writeSitePolicy(dir, p) });
    await waitEvent(budget, 'connected');
    await waitEvent(dpOnly, 'connected');
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(budget.output().slice(-6000));
    await stopProc(budget);
    await stopProc(dpOnly);
    await fake.close();
    t.cleanup();
  });

  it('sanity: an eval_ins for an experiment the budget site never trained for is refused (it assumes DP)', async () => {
    await fake.sendTo('budget', { type: 'eval_ins', experiment: 'never-trained', round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const a = await answerFor(fake, 'budget', 'never-trained', 1, ['eval_res', 'fit_failed', 'eval_failed']);
    assert.notEqual(a.type, 'eval_res', JSON.stringify(a));
  });

  for (const id of ['constructor', '__proto__', 'toString']) {
    it(`eval_ins for experiment "${id}" on a site with a privacy budget does not release exact metrics`, async () => {
      // The coordinator evaluates the model of a DP experiment under this id: the site must treat it like any experiment it never trained for.
      await fake.sendTo('budget', { type: 'eval_ins', experiment: id, round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
      const a = await answerFor(fake, 'budget', id, 1, ['eval_res', 'fit_failed', 'eval_failed']);
      assert.notEqual(a.type, 'eval_res', `HOLE: exact evaluation metrics released under a privacy budget: ${JSON.stringify(a)}`);
    });
  }

  it('eval_ins for an unknown experiment on a site that accepts only DP experiments (no budget) does not release exact metrics', async () => {
    await fake.sendTo('dponly', { type: 'eval_ins', experiment: 'fresh-name', round: 1, modelVersion: VERSION, spec: SPEC }, float32Bytes(PARAMS));
    const a = await answerFor(fake, 'dponly', 'fresh-name', 1, ['eval_res', 'fit_failed', 'eval_failed']);
    assert.notEqual(a.type, 'eval_res', `HOLE: a site with allowNonDp=false released exact metrics for a model it never trained under DP: ${JSON.stringify(a)}`);
  });

  // Last: if it is a hole, it kills the edge.
  it('fit_ins for experiment "constructor" is refused and the edge keeps running', async () => {
    const { message, payload } = fitIns('constructor', 1, { privacy: DP });
    await fake.sendTo('budget', message, payload);
    const outcome = await Promise.race([
      answerFor(fake, 'budget', 'constructor', 1, ['fit_res', 'fit_failed']).then((m) => ({ answered: m as MessageOf<'fit_failed'> })),
      budget.exited.then((code) => ({ exited: code })),
    ]);
    assert.ok(!('exited' in outcome), `HOLE: the edge process died (exit ${(outcome as { exited: number }).exited}): ${budget.output().slice(-1500)}`);
    // …and still serves the next round.
    const next = fitIns('after-constructor', 1, { privacy: DP });
    await fake.sendTo('budget', next.message, next.payload);
    await settled(budget, 'after-constructor');
  });
});
