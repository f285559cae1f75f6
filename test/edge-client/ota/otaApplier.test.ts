import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { zooModel } from '../../../models/zoo.js';
import { syntheticImages } from '../../../edge-client/data/syntheticImages.js';
import { EdgeNode } from '../../../edge-client/edgeNode.js';
import { initParams } from '../../../shared/model/initParams.js';
import { modelVersionId, paramsSha256, specHash } from '../../../shared/model/modelHash.js';
import { encodeModelUpdate, readUpdateHeader } from '../../../shared/model/modelUpdate.js';
import { signManifest, signUpdate, type SignedManifest } from '../../../shared/model/versionManifest.js';
import { generateIdentity } from '../../../shared/secure/identity.js';
import type { MessageOf } from '../../../shared/protocol/messages.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { runCli } from '../../helpers/runCli.js';

const spec = zooModel('cnn-28', { numClasses: 2 });
const CHUNK = 64 * 1024;

function nudged(p: Float32Array, by: number): Float32Array {
  return p.map((x, i) => x + by * Math.sin(i));
}

const bitsEqual = (a: Float32Array, b: Float32Array): boolean => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

describe('edge OTA: signed incremental updates from a (scripted) coordinator over loopback', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let node: EdgeNode;
  const versions = new Map<string, Float32Array>();
  /** Test hooks on the fake's update serving. */
  let serveAs: ((version: string) => Float32Array) | null = null;
  let corruptChunk = -1;
  let cutAfterChunks = -1;

  const v1 = initParams(spec, 1);
  const v2 = nudged(v1, 1e-3);
  const v3 = nudged(v2, 1e-3);

  let release = 0;
  function manifestFor(params: Float32Array, parent: string | null, round: number): SignedManifest {
    const id = modelVersionId(spec, params);
    versions.set(id, params);
    const now = new Date().toISOString();
    return signManifest(fake.identity.privateKey, fake.certificate, { id, parent, experiment: 'exp-1', round, specHash: specHash(spec), paramsSha256: paramsSha256(params), metrics: { accuracy: 0.5 }, createdAt: now, release: ++release, releasedAt: now });
  }

  async function serveFetch(m: MessageOf<'model_fetch'>): Promise<void> {
    const target = serveAs ? serveAs(m.version) : versions.get(m.version)!;
    const base = m.base ? versions.get(m.base) ?? null : null;
    const bytes = encodeModelUpdate(target, base);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const isDelta = readUpdateHeader(bytes).header.kind === 'delta';
    for (let i = 0, off = m.offset; off < bytes.length; i++, off += CHUNK) {
      if (i === cutAfterChunks) {
        cutAfterChunks = -1;
        fake.socket!.terminate();
        return;
      }
      const chunk = Buffer.from(bytes.subarray(off, Math.min(off + CHUNK, bytes.length)));
      if (i === corruptChunk) chunk[10] ^= 0xff;
      const base = isDelta ? m.base : null;
      await fake.send({ type: 'model_chunk', version: m.version, base, offset: off, totalBytes: bytes.length, sha256, signature: signUpdate(fake.identity.privateKey, { version: m.version, base, totalBytes: bytes.length, sha256 }) }, chunk);
    }
  }

  const statuses = (version: string): MessageOf<'model_status'>[] => fake.of('model_status').filter((s) => s.version === version);
  const lastStatus = (version: string) => waitFor(`a final status for ${version.slice(0, 8)}`, () => statuses(version).filter((s) => s.status !== 'downloading').at(-1), 30_000, 20);
  const offer = (s: SignedManifest): Promise<void> => fake.send({ type: 'model_offer', ...s, spec });

  before(async () => {
    await fake.start();
    fake.enrolEdge(join(t.dir, 'edge'));
    fake.onMessage = (m) => {
      if (m.type === 'model_fetch') void serveFetch(m);
    };
    const data = syntheticImages({ n: 40, seed: 1 });
    node = new EdgeNode({ stateDir: join(t.dir, 'edge'), data: { train: data, test: data, source: 'synthetic' }, log: () => {}, backoffMs: { initial: 50, max: 200 } });
    const ready = new Promise<void>((r) => (fake.onReady = () => r()));
    await node.start();
    await ready;
  });

  after(async () => {
    await node.stop();
    await fake.close();
    t.cleanup();
  });

  let m1: SignedManifest;
  let m2: SignedManifest;

  it('installs a full version, then a delta against it; the stored params are the exact bytes', async () => {
    m1 = manifestFor(v1, null, 0);
    await offer(m1);
    assert.equal((await lastStatus(m1.manifest.id)).status, 'active');
    assert.equal(fake.of('model_fetch')[0].base, null);
    m2 = manifestFor(v2, m1.manifest.id, 1);
    await offer(m2);
    assert.equal((await lastStatus(m2.manifest.id)).status, 'active');
    const fetch2 = fake.of('model_fetch').find((f) => f.version === m2.manifest.id)!;
    assert.equal(fetch2.base, m1.manifest.id, 'the second update is a delta against the version the edge runs');
    assert.equal(node.model.current!.versionId, m2.manifest.id);
    assert.ok(bitsEqual(node.store.load(m2.manifest.id).params, v2));
    assert.equal(node.store.active, m2.manifest.id);
  });

  it('refuses a manifest signed by another key, or altered after signing, and keeps its model', async () => {
    const good = manifestFor(v3, m2.manifest.id, 2);
    const forged = signManifest(generateIdentity().privateKey, fake.certificate, good.manifest);
    await offer(forged);
    const r1 = await lastStatus(good.manifest.id);
    assert.equal(r1.status, 'refused');
    assert.match(r1.reason!, /not signed by the certified coordinator key/);
    const altered = { ...good, manifest: { ...good.manifest, metrics: { accuracy: 0.99 } } };
    await offer(altered);
    await waitFor('second refusal', () => statuses(good.manifest.id).filter((s) => s.status === 'refused').length === 2, 10_000, 20);
    assert.equal(fake.of('model_fetch').filter((f) => f.version === good.manifest.id).length, 0, 'nothing is fetched for an unverified manifest');
    assert.equal(node.model.current!.versionId, m2.manifest.id);
  });

  it('refuses params that do not match the signed manifest, and does not retry that version', async () => {
    const m3 = manifestFor(nudged(v2, 3e-3), m2.manifest.id, 2);
    serveAs = () => nudged(v2, 4e-3); // a self-consistent update of other params
    await offer(m3);
    const r = await lastStatus(m3.manifest.id);
    serveAs = null;
    assert.equal(r.status, 'refused');
    assert.match(r.reason!, /differs from the signed manifest/);
    assert.equal(node.model.current!.versionId, m2.manifest.id);
    await offer(m3);
    await waitFor('the re-offer answered', () => statuses(m3.manifest.id).filter((s) => s.status === 'refused').length === 2, 10_000, 20);
    assert.match(statuses(m3.manifest.id).at(-1)!.reason!, /not re-installed/);
  });

  it('refuses an update whose chunk was corrupted in transit', async () => {
    const v4 = nudged(v2, -2e-3);
    const m4 = manifestFor(v4, m2.manifest.id, 3);
    corruptChunk = 0;
    await offer(m4);
    const r = await lastStatus(m4.manifest.id);
    corruptChunk = -1;
    assert.equal(r.status, 'refused');
    assert.match(r.reason!, /corrupted or truncated chunks/);
    assert.equal(node.model.current!.versionId, m2.manifest.id);
  });

  it('resumes a download cut by a lost connection from the bytes it already has', async () => {
    // A full update (no base the fake knows), several chunks long.
    const v5 = initParams(spec, 5);
    const m5 = manifestFor(v5, null, 4);
    versions.delete(m2.manifest.id); // the fake "lost" v2, so it must send v5 whole
    const connectionsBefore = fake.connections;
    cutAfterChunks = 2;
    fake.onReady = () => void offer(m5); // the coordinator offers again after the reconnection
    await offer(m5);
    const r = await lastStatus(m5.manifest.id);
    assert.equal(r.status, 'active', r.reason);
    assert.equal(fake.connections, connectionsBefore + 1);
    const fetches = fake.of('model_fetch').filter((f) => f.version === m5.manifest.id);
    assert.equal(fetches[0].offset, 0);
    assert.equal(fetches.at(-1)!.offset, 2 * CHUNK, 'the second fetch starts where the cut one stopped');
    assert.ok(bitsEqual(node.store.load(m5.manifest.id).params, v5));
    assert.equal(node.model.current!.versionId, m5.manifest.id);
  });

  it('a version whose outputs are NaN fails the smoke check and never serves', async () => {
    // Finite but enormous weights: the logits overflow to ±Infinity and softmax gives NaN.
    const bad = initParams(spec, 6).map((x) => x * 1e30);
    const m6 = manifestFor(bad, null, 5);
    await offer(m6);
    const r = await lastStatus(m6.manifest.id);
    assert.equal(r.status, 'refused');
    assert.match(r.reason!, /failed its checks: .*non-finite output/);
    assert.equal(node.model.current!.versionId, fake.of('model_status').filter((s) => s.status === 'active').at(-1)!.version);
    assert.equal(node.model.lastRefusal?.versionId, m6.manifest.id);
  });

  it('"fedmed edge rollback" switches the running edge back; it reports the rollback and does not re-install', async () => {
    const from = node.model.current!.versionId;
    const r = await runCli(['edge', 'rollback', '--state-dir', join(t.dir, 'edge')]);
    assert.equal(r.code, 0, r.stderr);
    await waitFor('the running edge to switch', () => node.model.current!.versionId !== from, 10_000, 50);
    assert.equal(node.model.current!.versionId, m2.manifest.id, 'back to the version active before');
    const rolled = await waitFor('rolled_back report', () => statuses(from).find((s) => s.status === 'rolled_back'), 10_000, 20);
    assert.ok(rolled);
    const fromManifest = node.store.load(from).signed;
    await offer(fromManifest);
    await waitFor('re-offer answered', () => statuses(from).filter((s) => s.status === 'rolled_back').length === 2, 10_000, 20);
    assert.equal(node.model.current!.versionId, m2.manifest.id);
  });

  it('a download whose every byte is on disk (a crash before it was processed) is finished from disk at the next offer, with no fetch', async () => {
    const active = node.store.active!;
    const base = node.store.load(active).params;
    const v6 = nudged(base, 2e-3);
    const m6 = manifestFor(v6, active, 5);
    const bytes = encodeModelUpdate(v6, base);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    // What a kill right after the last chunk was appended leaves in versions/.
    node.store.startPartial({ version: m6.manifest.id, base: active, sha256, totalBytes: bytes.length });
    node.store.appendPartial(bytes);
    await offer(m6);
    const r = await lastStatus(m6.manifest.id);
    assert.equal(r.status, 'active', r.reason);
    assert.equal(fake.of('model_fetch').filter((f) => f.version === m6.manifest.id).length, 0, 'nothing left to fetch');
    assert.ok(bitsEqual(node.store.load(m6.manifest.id).params, v6));
    assert.equal(node.store.partial(), null);
    // The same with bytes that do not hash as announced (a torn write): fetched anew from 0, not taken for complete.
    const v7 = nudged(v6, 2e-3);
    const m7 = manifestFor(v7, m6.manifest.id, 6);
    const bytes7 = encodeModelUpdate(v7, v6);
    node.store.startPartial({ version: m7.manifest.id, base: m6.manifest.id, sha256: createHash('sha256').update(bytes7).digest('hex'), totalBytes: bytes7.length });
    node.store.appendPartial(Buffer.alloc(bytes7.length));
    await offer(m7);
    assert.equal((await lastStatus(m7.manifest.id)).status, 'active');
    assert.deepEqual(fake.of('model_fetch').filter((f) => f.version === m7.manifest.id).map((f) => f.offset), [0]);
    assert.ok(bitsEqual(node.store.load(m7.manifest.id).params, v7));
  });
});
