/**
 * OTA across a coordinator key rotation with the old certificate revoked (real edge process):
 * the versions it stored under the old key stop verifying — so at restart it serves none of them
 * — but the anti-downgrade reference survives (the release is kept apart from the manifest), the
 * version re-signed by the new key is installed again from the stored params, and an older
 * release, even properly re-signed, is still refused.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { initParams } from '../../shared/model/initParams.js';
import { modelVersionId, paramsSha256, specHash } from '../../shared/model/modelHash.js';
import { encodeModelUpdate } from '../../shared/model/modelUpdate.js';
import { signManifest, signUpdate, type SignedManifest, type VersionManifest } from '../../shared/model/versionManifest.js';
import { generateIdentity } from '../../shared/secure/identity.js';
import { issueCoordinatorCertificate, issueRevocationList } from '../../shared/secure/trust/adminSigning.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, spawnCli, stopProc, waitFor, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { dataFile, SPEC, startEdge, waitEvent } from './harness.js';

describe('adversary: OTA after a coordinator key rotation that revokes the old certificate (real edge process)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  const procs: Proc[] = [];
  let port = 0;
  const params = new Map<string, Float32Array>();
  after(async () => {
    for (const p of procs) await stopProc(p);
    await fake.close();
    t.cleanup();
  });

  const manifestBody = (p: Float32Array, release: number): VersionManifest => {
    const id = modelVersionId(SPEC, p);
    params.set(id, p);
    const now = new Date().toISOString();
    return { id, parent: null, experiment: 'exp', round: 1, specHash: specHash(SPEC), paramsSha256: paramsSha256(p), metrics: {}, createdAt: now, release, releasedAt: now };
  };
  const sign = (m: VersionManifest): SignedManifest => signManifest(fake.identity.privateKey, fake.certificate, m);
  const offer = (s: SignedManifest) => fake.sendTo('hosp', { type: 'model_offer', ...s, spec: SPEC });
  const serving = async (): Promise<string | null> => ((await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { version: string | null }).version;
  const lastStatus = (id: string, n: number) => waitFor(`status ${n} for ${id.slice(0, 8)}`, () => fake.of('model_status', 'hosp').filter((s) => s.version === id && s.status !== 'downloading')[n - 1], 30_000, 20);

  it('re-signed by the new key, the active version serves again; an older release is still refused', async () => {
    await fake.start();
    port = await freePort();
    fake.onMessage = (m) => {
      if (m.type !== 'model_fetch') return;
      const bytes = encodeModelUpdate(params.get(m.version)!, null);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      void fake.sendTo('hosp', { type: 'model_chunk', version: m.version, base: null, offset: 0, totalBytes: bytes.length, sha256, signature: signUpdate(fake.identity.privateKey, { version: m.version, base: null, totalBytes: bytes.length, sha256 }) }, bytes);
    };
    const edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(port)] });
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
    const again = spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'hosp'), '--data', await dataFile(t.dir), '--serve-port', String(port)]);
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
