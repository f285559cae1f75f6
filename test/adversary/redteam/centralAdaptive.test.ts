/**
 * Red team (regression check, not an attack): an honest central-DP round with adaptive clipping
 * — the coordinator sends countNoiseStddev 0 in central mode (privacyLayer.ts: siteNoiseShare
 * of central is 0) — on a site without a budget. The site should train (it trusts the
 * coordinator with the noise in central mode) rather than refuse a release it cannot account.
 */
import assert from 'node:assert/strict';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';

describe('red team: honest central DP with adaptive clipping (real edge process, default policy)', function () {
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

  it('trains and sends its clip bit', async () => {
    const { message, payload } = fitIns('exp-central-adaptive', 1, { privacy: { mode: 'central', clip: 1, noiseMultiplier: 1, noiseStddev: 0, samplingRate: 0.5, delta: 1e-5, countNoiseStddev: 0 } });
    await fake.sendTo('hosp', message, payload);
    const a = await waitFor('the answer', () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === 'exp-central-adaptive')?.m, 60_000, 20);
    assert.equal(a.type, 'fit_res', `REGRESSION: ${JSON.stringify(a).slice(0, 400)}`);
  });
});
