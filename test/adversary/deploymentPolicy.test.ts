/**
 * A site whose policy deploys by hand (real edge process serving inference, scripted
 * coordinator): a verified version the coordinator offers is stored and reported `held`, never
 * served, until the hospital's operator runs `fedmed edge activate`; a policy edit to automatic
 * deployment applies to the next offer.
 */
import assert from 'node:assert/strict';
import { initParams } from '../../shared/model/initParams.js';
import { defaultPolicy, writeSitePolicy } from '../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { SPEC, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';
import { ScriptedOta, servingVersion, sibling } from './scriptedOta.js';

describe('adversary: automatic deployment to a site that deploys by hand (real edge process serving inference)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let stateDir = '';
  let port = 0;
  let ota: ScriptedOta;
  const manual = { ...defaultPolicy(), deployment: { mode: 'manual' as const, maxAccuracyDrop: null, accuracyFloor: 0 } };
  before(async () => {
    await fake.start();
    ota = new ScriptedOta(fake);
    port = await freePort();
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(port), '--serve-no-auth'], beforeStart: (dir) => writeSitePolicy((stateDir = dir), manual) });
    await waitEvent(edge, 'inference_listening');
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  it('holds an offered version until the operator activates it; the next offer after a policy edit serves at once', async () => {
    const v1 = ota.manifest(initParams(SPEC, 31));
    await ota.offer(v1);
    const held = await ota.status(v1.manifest.id);
    assert.equal(held.status, 'held');
    assert.match(held.reason!, /this site deploys by hand \(site policy deployment\.mode = "manual"\): "fedmed edge activate" makes it serve/);
    assert.equal(await servingVersion(port), null, 'nothing serves until the operator says so');
    const act = await runCli(['edge', 'activate', v1.manifest.id.slice(0, 10), '--state-dir', stateDir]);
    assert.equal(act.code, 0, act.stderr);
    await waitFor('v1 to serve', async () => (await servingVersion(port)) === v1.manifest.id, 20_000);
    assert.equal((await ota.status(v1.manifest.id)).status, 'active');

    const v2 = ota.manifest(sibling(ota.params.get(v1.manifest.id)!)); // within the default relative accuracy floor
    await ota.offer(v2);
    assert.equal((await ota.status(v2.manifest.id)).status, 'held');
    assert.equal(await servingVersion(port), v1.manifest.id);
    writeSitePolicy(stateDir, defaultPolicy());
    await ota.offer(ota.manifest(ota.params.get(v2.manifest.id)!)); // offered again (a newer release of the same model)
    await waitFor('v2 to serve', async () => (await servingVersion(port)) === v2.manifest.id, 20_000);
    assert.equal((await ota.status(v2.manifest.id)).status, 'active');
  });
});
