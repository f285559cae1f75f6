/**
 * Model OTA against a malicious coordinator or network, with a real edge process serving
 * inference: an older signed manifest replayed after a newer one is refused and the newer
 * model keeps serving; update bytes announced beyond what the model's size allows, or whose
 * length and hash are not signed by the certified key, are refused before a byte is written;
 * a stored manifest altered on disk is refused when the edge starts again.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { initParams } from '../../shared/model/initParams.js';
import { encodeModelUpdate } from '../../shared/model/modelUpdate.js';
import { signUpdate, type SignedManifest } from '../../shared/model/versionManifest.js';
import { generateIdentity } from '../../shared/secure/identity.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, spawnCli, stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { dataFile, SPEC, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';
import { ScriptedOta, servingVersion, sibling } from './scriptedOta.js';

describe('adversary: OTA downgrade and oversized updates (real edge process serving inference)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let port = 0;
  let ota: ScriptedOta;
  const manifest = (p: Float32Array, o: { release?: number } = {}): SignedManifest => ota.manifest(p, o);
  const offer = (s: SignedManifest) => ota.offer(s);
  const statusOf = (version: string) => ota.status(version);
  const serving = () => servingVersion(port);

  before(async () => {
    await fake.start();
    port = await freePort();
    ota = new ScriptedOta(fake);
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(port), '--serve-no-auth'] });
    await waitEvent(edge, 'connected');
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  let v1: SignedManifest;
  let v2: SignedManifest;

  it('an older signed manifest replayed after a newer one is refused; the newer model keeps serving', async () => {
    v1 = manifest(initParams(SPEC, 11));
    await offer(v1);
    assert.equal((await statusOf(v1.manifest.id)).status, 'active');
    v2 = manifest(sibling(ota.params.get(v1.manifest.id)!)); // (a random model could fail the default relative accuracy floor)
    await offer(v2);
    assert.equal((await statusOf(v2.manifest.id)).status, 'active');
    await waitFor('v2 to serve', async () => (await serving()) === v2.manifest.id, 20_000);
    const fetchesBefore = fake.of('model_fetch', 'hosp').length;
    await offer(v1); // a perfectly valid signature, from an older release
    const s = await waitFor('the refusal', () => fake.of('model_status', 'hosp').filter((x) => x.version === v1.manifest.id && x.status === 'refused').at(-1), 20_000, 20);
    assert.match(s.reason!, /release 1 is older than release 2 .* a downgrade is refused/);
    assert.equal(fake.of('model_fetch', 'hosp').length, fetchesBefore, 'nothing fetched for it');
    assert.equal(await serving(), v2.manifest.id);
  });

  it('update bytes beyond the signed length a model of this size allows, or not signed by the certified key, are refused before writing', async () => {
    const partial = join(t.dir, 'hosp', 'versions', 'partial.bin');
    const v3 = manifest(initParams(SPEC, 13));
    ota.answer = async (m) => {
      const totalBytes = 2 ** 31 - 1; // "2 GiB are coming", properly signed
      const sha256 = 'a'.repeat(64);
      await fake.sendTo('hosp', { type: 'model_chunk', version: m.version, base: null, offset: 0, totalBytes, sha256, signature: signUpdate(fake.identity.privateKey, { version: m.version, base: null, totalBytes, sha256 }) }, Buffer.alloc(64 * 1024, 1));
    };
    await offer(v3);
    const big = await statusOf(v3.manifest.id);
    assert.equal(big.status, 'refused');
    assert.match(big.reason!, /announces 2147483647 bytes; a model of 224002 parameters needs at most \d+: refused before writing anything/);
    assert.equal(existsSync(partial), false);
    const v4 = manifest(initParams(SPEC, 14));
    ota.answer = async (m) => {
      // The honest bytes, but their length and hash signed by someone else.
      const bytes = encodeModelUpdate(ota.params.get(m.version)!, null);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      await fake.sendTo('hosp', { type: 'model_chunk', version: m.version, base: null, offset: 0, totalBytes: bytes.length, sha256, signature: signUpdate(generateIdentity().privateKey, { version: m.version, base: null, totalBytes: bytes.length, sha256 }) }, bytes);
    };
    await offer(v4);
    const unsigned = await statusOf(v4.manifest.id);
    assert.equal(unsigned.status, 'refused');
    assert.match(unsigned.reason!, /length and hash are not signed by the certified coordinator key/);
    assert.equal(existsSync(partial), false);
    ota.answer = null;
    assert.equal(await serving(), v2.manifest.id);
  });

  it('a stored manifest altered on disk is refused when the edge starts again; the last version that verifies serves', async () => {
    await stopProc(edge);
    const file = join(t.dir, 'hosp', 'versions', `${v2.manifest.id}.manifest.json`);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as SignedManifest;
    writeFileSync(file, JSON.stringify({ ...stored, manifest: { ...stored.manifest, release: 99 } }));
    const again = spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'hosp'), '--data', await dataFile(t.dir), '--serve-port', String(port), '--serve-no-auth']);
    try {
      await waitFor('the restarted edge to serve', () => again.output().includes('"event":"inference_listening"'), 30_000);
      assert.match(again.output(), /"event":"stored_version_unusable","version":"[0-9a-f]{64}","reason":"[^"]*not signed by the certified coordinator key/);
      assert.equal(await serving(), v1.manifest.id);
    } finally {
      await stopProc(again);
    }
  });
});
