/**
 * Red team: under `release.dp.metrics = "noised"` the training accuracy leaves with N(0, (z/minExamples)²)
 * (siteRules.ts shapeFit), on the premise that it is an average over ≥ minExamples examples. But
 * the accuracy released is the *last epoch's* (epochLoop.ts: correct / seen), and the
 * coordinator picks `config.steps` and `config.batchSize`: with steps = 1 and batchSize = 1 it is
 * the correctness of a single training record (sensitivity 1), noised as if its sensitivity were
 * 1/minExamples — and charged as a Gaussian of multiplier z.
 *
 * With minExamples = 40 and z = 0.5 the released value is 0 or 1 plus N(0, 0.0125²). With noise
 * calibrated to sensitivity 1 (stddev 0.5) a value lands within 0.1 of {0, 1} with probability
 * ≈ 0.58; all 12 rounds doing so has probability < 2·10⁻³.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { defaultPolicy, writeSitePolicy, type SitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';

describe('red team: the training accuracy of one record, noised as if over minExamples (real edge process)', function () {
  this.timeout(240_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  const policy: SitePolicy = defaultPolicy();
  policy.privacy.allowNonDp = false;
  policy.release = { ...policy.release, minExamples: 40, dp: { exampleCount: 'withheld', metrics: 'noised' } };
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { beforeStart: (dir) => writeSitePolicy(dir, policy) }); // 42 training examples
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(edge.output().slice(-6000));
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  async function attack(experiment: string, steps: number, batchSize: number): Promise<void> {
    const released: number[] = [];
    let refused = 0;
    for (let round = 1; round <= 12; round++) {
      const { message, payload } = fitIns(experiment, round, {
        privacy: { mode: 'local', clip: 1, noiseMultiplier: 0.5, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 },
        config: { epochs: 1, steps, batchSize, learningRate: 0.001, optimizer: 'adam', proxMu: 0, seed: round },
      });
      await fake.sendTo('hosp', message, payload);
      const a = await waitFor(`round ${round}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === experiment && x.m.round === round)?.m, 60_000, 20);
      if (a.type === 'fit_failed') refused++;
      else if (a.type === 'fit_res' && a.metrics.accuracy !== undefined) released.push(a.metrics.accuracy);
    }
    if (released.length === 0) return; // refused or withheld: defended
    const nearBit = released.filter((v) => Math.min(v, 1 - v) < 0.1).length;
    assert.ok(nearBit < released.length, `HOLE: all ${released.length} released training accuracies are within 0.1 of 0 or 1 (one record's correctness, noised as if over ≥ minExamples instead of with z = 0.5; ${refused} refused): ${released.map((v) => v.toFixed(3)).join(', ')}`);
  }

  it('steps = 1, batchSize = 1: the released accuracy does not reveal one record\'s correctness', () => attack('exp-one', 1, 1));

  // 43 steps of 1 over 42 examples: steps·batchSize = 43 ≥ minExamples, but the last pass — whose accuracy is released — sees 1 example.
  it('steps = n + 1, batchSize = 1: the last epoch\'s accuracy (one record) does not leave with the noise of 40', () => attack('exp-wrap', 43, 1));
});
