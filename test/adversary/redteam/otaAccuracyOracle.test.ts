/**
 * Red team: the deployment checks (accuracy floor, largest drop) evaluate an offered version on
 * the site's local test split — and the refusal's reason, holdout accuracy to 4 decimals,
 * goes back to the coordinator in model_status. The coordinator signs its own manifests, so it
 * can offer any model, as often as it likes: an exact accuracy oracle on local data, outside
 * every release rule and the ledger (here on a site with a privacy budget that withholds metrics).
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { initParams } from '../../../shared/model/initParams.js';
import { policyFromFlags, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { freePort, stopProc } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { SPEC, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';
import { ScriptedOta } from '../scriptedOta.js';

describe('red team: holdout accuracy in OTA refusal reasons (real edge process serving inference, privacy budget)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let ota: ScriptedOta;
  before(async () => {
    await fake.start();
    ota = new ScriptedOta(fake);
    const p = policyFromFlags({ privacyBudget: 1 });
    p.release = { ...p.release, metrics: 'withheld', dp: { exampleCount: 'withheld', metrics: 'withheld' } };
    p.deployment = { mode: 'auto', maxAccuracyDrop: null, accuracyFloor: 0.99 };
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(await freePort()), '--serve-no-auth'], beforeStart: (dir) => writeSitePolicy(dir, p) });
    await waitEvent(edge, 'inference_listening');
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  it('offers of arbitrary models: the refusals do not carry their accuracy on the local test split', async () => {
    const reasons: string[] = [];
    for (const seed of [61, 62, 63]) {
      const v = ota.manifest(initParams(SPEC, seed));
      await ota.offer(v);
      const s = await ota.status(v.manifest.id);
      assert.equal(s.status, 'refused');
      reasons.push(s.reason ?? '');
    }
    const leaked = reasons.filter((r) => /accuracy \d\.\d+/.test(r));
    assert.deepEqual(leaked, [], `HOLE: exact local holdout accuracies reach the coordinator: ${JSON.stringify(reasons)}`);
  });
});
