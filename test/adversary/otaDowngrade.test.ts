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
import { modelVersionId, paramsSha256, specHash } from '../../shared/model/modelHash.js';
import { encodeModelUpdate, readUpdateHeader } from '../../shared/model/modelUpdate.js';
import { signManifest, signUpdate, type SignedManifest } from '../../shared/model/versionManifest.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { generateIdentity } from '../../shared/secure/identity.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, spawnCli, stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { dataFile, SPEC, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';

describe('adversary: OTA downgrade and oversized updates (real edge process serving inference)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let port = 0;
  const params = new Map<string, Float32Array>();
  let release = 0;
  /** How the fake answers the next model_fetch (default: the honest update). */
  let answer: ((m: MessageOf<'model_fetch'>) => Promise<void>) | null = null;

  const manifest = (p: Float32Array, o: { release?: number } = {}): SignedManifest => {
    const id = modelVersionId(SPEC, p);
    params.set(id, p);
    const now = new Date().toISOString();
    return signManifest(fake.identity.privateKey, fake.certificate, { id, parent: null, experiment: 'exp', round: 1, specHash: specHash(SPEC), paramsSha256: paramsSha256(p), metrics: {}, createdAt: now, release: o.release ?? ++release, releasedAt: now });
  };
  const offer = (s: SignedManifest) => fake.sendTo('hosp', { type: 'model_offer', ...s, spec: SPEC });
  const statusOf = (version: string) => waitFor(`a final status for ${version.slice(0, 8)}`, () => fake.of('model_status', 'hosp').filter((s) => s.version === version && s.status !== 'downloading').at(-1), 30_000, 20);
  const serving = async (): Promise<string | null> => ((await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { version: string | null }).version;

  async function honestUpdate(m: MessageOf<'model_fetch'>): Promise<void> {
    const bytes = encodeModelUpdate(params.get(m.version)!, m.base ? (params.get(m.base) ?? null) : null);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const base = readUpdateHeader(bytes).header.kind === 'delta' ? m.base : null;
    await fake.sendTo('hosp', { type: 'model_chunk', version: m.version, base, offset: 0, totalBytes: bytes.length, sha256, signature: signUpdate(fake.identity.privateKey, { version: m.version, base, totalBytes: bytes.length, sha256 }) }, bytes);
  }

  before(async () => {
    await fake.start();
    port = await freePort();
    fake.onMessage = (m) => {
      if (m.type === 'model_fetch') void (answer ?? honestUpdate)(m);
    };
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(port)] });
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
    v2 = manifest(initParams(SPEC, 12));
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
    answer = async (m) => {
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
    answer = async (m) => {
      // The honest bytes, but their length and hash signed by someone else.
      const bytes = encodeModelUpdate(params.get(m.version)!, null);
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      await fake.sendTo('hosp', { type: 'model_chunk', version: m.version, base: null, offset: 0, totalBytes: bytes.length, sha256, signature: signUpdate(generateIdentity().privateKey, { version: m.version, base: null, totalBytes: bytes.length, sha256 }) }, bytes);
    };
    await offer(v4);
    const unsigned = await statusOf(v4.manifest.id);
    assert.equal(unsigned.status, 'refused');
    assert.match(unsigned.reason!, /length and hash are not signed by the certified coordinator key/);
    assert.equal(existsSync(partial), false);
    answer = null;
    assert.equal(await serving(), v2.manifest.id);
  });

  it('a stored manifest altered on disk is refused when the edge starts again; the last version that verifies serves', async () => {
    await stopProc(edge);
    const file = join(t.dir, 'hosp', 'versions', `${v2.manifest.id}.manifest.json`);
    const stored = JSON.parse(readFileSync(file, 'utf8')) as SignedManifest;
    writeFileSync(file, JSON.stringify({ ...stored, manifest: { ...stored.manifest, release: 99 } }));
    const again = spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'hosp'), '--data', await dataFile(t.dir), '--serve-port', String(port)]);
    try {
      await waitFor('the restarted edge to serve', () => again.output().includes('"event":"inference_listening"'), 30_000);
      assert.match(again.output(), /"event":"stored_version_unusable","version":"[0-9a-f]{64}","reason":"[^"]*not signed by the certified coordinator key/);
      assert.equal(await serving(), v1.manifest.id);
    } finally {
      await stopProc(again);
    }
  });
});
