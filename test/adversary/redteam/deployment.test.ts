/**
 * Red team: deployment policy against a coordinator that re-offers what the site refused or
 * holds (new releases of the same model, offers stacked while one is being installed).
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { initParams } from '../../../shared/model/initParams.js';
import { defaultPolicy, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { freePort, stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { SPEC, startEdge, waitEvent, type EdgeUnderTest } from '../harness.js';
import { ScriptedOta, servingVersion } from '../scriptedOta.js';

describe('red team: re-offering refused and held versions (real edge processes serving inference)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  const edges: EdgeUnderTest[] = [];
  before(() => fake.start());
  after(async () => {
    for (const e of edges) await stopProc(e);
    await fake.close();
    t.cleanup();
  });

  async function edgeWith(name: string, deployment: ReturnType<typeof defaultPolicy>['deployment']): Promise<{ ota: ScriptedOta; port: number }> {
    const ota = new ScriptedOta(fake, name);
    const port = await freePort();
    const edge = await startEdge(fake, t.dir, name, { args: ['--serve-port', String(port), '--serve-no-auth'], beforeStart: (dir) => writeSitePolicy(dir, { ...defaultPolicy(), deployment }) });
    edges.push(edge);
    await waitEvent(edge, 'inference_listening');
    await waitEvent(edge, 'connected');
    return { ota, port };
  }

  it('accuracy floor: a version below it, re-offered at newer releases and all at once, never serves', async () => {
    const { ota, port } = await edgeWith('floor', { mode: 'auto', maxAccuracyDrop: null, accuracyFloor: 0.99 });
    const p = initParams(SPEC, 41);
    const v = ota.manifest(p);
    await ota.offer(v);
    assert.equal((await ota.status(v.manifest.id)).status, 'refused');
    await Promise.all([ota.offer(ota.manifest(p)), ota.offer(ota.manifest(p)), ota.offer(ota.manifest(p, { release: 1000 }))]);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await servingVersion(port), null);
    assert.ok(fake.of('model_status', 'floor').every((s) => s.status !== 'active'));
  });

  it('manual deployment: a held version re-offered at newer releases, and a second version offered after them, stay held', async () => {
    const { ota, port } = await edgeWith('manual', { mode: 'manual', maxAccuracyDrop: null, accuracyFloor: 0 });
    const p1 = initParams(SPEC, 51);
    const p2 = initParams(SPEC, 52);
    const v1 = ota.manifest(p1);
    await ota.offer(v1);
    assert.equal((await ota.status(v1.manifest.id)).status, 'held');
    await Promise.all([ota.offer(ota.manifest(p1)), ota.offer(ota.manifest(p1, { release: 999 }))]);
    await ota.offer(ota.manifest(p2));
    await waitFor('a status for v2', () => fake.of('model_status', 'manual').some((s) => s.status !== 'downloading' && s.version !== v1.manifest.id), 30_000, 50);
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(await servingVersion(port), null, 'nothing serves until the operator activates');
    assert.ok(fake.of('model_status', 'manual').every((s) => s.status !== 'active'), JSON.stringify(fake.of('model_status', 'manual')));
  });
});
