/**
 * Red team: the per-experiment ε limit (privacy.budget.perExperiment) is keyed by the experiment
 * id — which the coordinator chooses. Once an experiment is refused for its per-experiment
 * budget, the coordinator continues the same training (same model, same data, same settings)
 * under a new id. Only the total limit then binds.
 *
 * This is the documented limit of a per-name limit (README, Site policy): what the test holds
 * the site to is the bound that does not depend on names — the total budget — and that approval,
 * when required, puts the renamed experiment in front of the operator.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { policyFromFlags, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };

describe('red team: renaming an experiment past its per-experiment budget (real edge process)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { beforeStart: (dir) => writeSitePolicy(dir, policyFromFlags({ privacyBudget: 1000, privacyBudgetPerExperiment: 4 })) });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const ask = async (experiment: string, round: number) => {
    const { message, payload } = fitIns(experiment, round, { privacy: DP });
    await fake.sendTo('hosp', message, payload);
    return waitFor(`${experiment}/${round}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === experiment && x.m.round === round)?.m, 60_000, 20);
  };

  it('the renamed training trains on, but the total budget binds it whatever its names', async () => {
    let round = 1;
    while ((await ask('exp-a', round)).type === 'fit_res') round++;
    assert.ok(round > 1, 'trained at least once');
    // Total 1000 allows it to go on under new names; a total of 8 would not: set it now (the edge re-reads its policy).
    writeSitePolicy(join(t.dir, 'hosp'), policyFromFlags({ privacyBudget: 8, privacyBudgetPerExperiment: 4 }));
    let names = 0;
    for (;;) {
      const r = await ask(`exp-a-continued-${names}`, 1);
      if (r.type !== 'fit_res') {
        assert.match((r as { reason: string }).reason, /privacy budget exhausted: this round would bring the site's total to ε = [\d.]+ \(limit 8/);
        break;
      }
      names++;
      assert.ok(names < 10, 'the total budget never bound');
    }
  });
});
