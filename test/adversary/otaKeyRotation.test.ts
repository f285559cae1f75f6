/**
 * OTA across a coordinator key rotation with the old certificate revoked (real edge process):
 * the versions it stored under the old key stop verifying — so at restart it serves none of them
 * — but the anti-downgrade reference survives (the release is kept apart from the manifest), the
 * version re-signed by the new key is installed again from the stored params, and an older
 * release, even properly re-signed, is still refused.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { initParams } from '../../shared/model/initParams.js';
import type { SignedManifest, VersionManifest } from '../../shared/model/versionManifest.js';
import { generateIdentity } from '../../shared/secure/identity.js';
import { issueCoordinatorCertificate, issueRevocationList } from '../../shared/secure/trust/adminSigning.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, spawnCli, stopProc, waitFor, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { dataFile, SPEC, startEdge, waitEvent } from './harness.js';
import { ScriptedOta, servingVersion } from './scriptedOta.js';

describe('adversary: OTA after a coordinator key rotation that revokes the old certificate (real edge process)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  const procs: Proc[] = [];
  let port = 0;
  let ota: ScriptedOta;
  after(async () => {
    for (const p of procs) await stopProc(p);
    await fake.close();
    t.cleanup();
  });

  const manifestBody = (p: Float32Array, release: number): VersionManifest => ota.body(p, release);
  const sign = (m: VersionManifest): SignedManifest => ota.sign(m);
  const offer = (s: SignedManifest) => ota.offer(s);
  const serving = () => servingVersion(port);
  const lastStatus = (id: string, n: number) => ota.status(id, n);

  it('re-signed by the new key, the active version serves again; an older release is still refused', async () => {
    await fake.start();
    port = await freePort();
    ota = new ScriptedOta(fake);
    const edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(port), '--serve-no-auth'] });
    procs.push(edge);
    await waitEvent(edge, 'connected');
    const a = manifestBody(initParams(SPEC, 21), 1);
    const b = manifestBody(initParams(SPEC, 22), 2);
    await offer(sign(a));
    assert.equal((await lastStatus(a.id, 1)).status, 'active');
    await offer(sign(b));
    assert.equal((await lastStatus(b.id, 1)).status, 'active');
    await waitFor('B to serve', async () => (await serving()) === b.id, 20_000);

    // Rotation: a new key, certified; the old certificate revoked (the edge takes the list).
    const old = fake.certificate;
    fake.identity = generateIdentity();
    fake.certificate = issueCoordinatorCertificate(fake.admin, { publicKey: fake.identity.publicKeyB64, urls: [fake.url] });
    fake.revocations = issueRevocationList(fake.admin, null, [{ serial: old.body.serial, subject: 'coordinator (rotated)' }]);
    await fake.sendTo('hosp', { type: 'revocations', list: fake.revocations });
    await waitEvent(edge, 'revocations_updated');
    await stopProc(edge);

    // Restarted: nothing it stored verifies any more, so nothing serves ...
    const again = spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'hosp'), '--data', await dataFile(t.dir), '--serve-port', String(port), '--serve-no-auth']);
    procs.push(again);
    await waitFor('the restarted edge to connect', () => again.output().includes('"event":"connected"'), 30_000);
    assert.equal((again.output().match(/"event":"stored_version_unusable"/g) ?? []).length, 2, again.output());
    assert.equal(await serving(), null);
    // ... until the coordinator offers the active version re-signed by its new key.
    await offer(sign(b));
    await waitFor('B to serve again', async () => (await serving()) === b.id, 20_000);
    // The release it runs is still known: an older one, properly signed by the new key, is refused.
    await offer(sign(a));
    const refused = await waitFor('the refusal of A', () => fake.of('model_status', 'hosp').filter((s) => s.version === a.id && s.status === 'refused').at(-1), 20_000, 20);
    assert.match(refused.reason!, /release 1 is older than release 2/);
    assert.equal(await serving(), b.id);
  });
});
