/**
 * Red team: an experiment's protection is pinned (experimentSecurity.ts: "the protection of an
 * experiment never changes"), but its *privacy* is not: on a site without a budget (the
 * default policy, approval "auto") a coordinator runs DP rounds, then drops DP — or switches
 * to "central" — for the next round of the same experiment, and gets that round's update, count
 * and training metrics exact. Everything the earlier rounds' noise protected is then moot.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };

describe('red team: a DP experiment that stops being DP (real edge process, default policy)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp');
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const answer = (experiment: string, round: number) => waitFor(`${experiment}/${round}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === experiment && x.m.round === round)?.m, 60_000, 20);

  for (const [name, next] of [['no privacy', undefined], ['mode "central"', { ...DP, mode: 'central' as const }]] as const) {
    it(`round 1 local DP, round 2 with ${name}: round 2 is refused`, async () => {
      const exp = `exp-${name.replace(/\W+/g, '-')}`;
      const r1 = fitIns(exp, 1, { privacy: DP });
      await fake.sendTo('hosp', r1.message, r1.payload);
      assert.equal((await answer(exp, 1)).type, 'fit_res');
      const r2 = fitIns(exp, 2, next ? { privacy: next } : {});
      await fake.sendTo('hosp', r2.message, r2.payload);
      const a = await answer(exp, 2);
      assert.equal(a.type, 'fit_failed', `HOLE: round 2 of a DP experiment released un-noised: ${JSON.stringify(a).slice(0, 300)}`);
    });
  }
});
