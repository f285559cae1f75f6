import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/coordinatorServer.js';
import { EdgeClient } from '../../edge-client/federation/edgeClient.js';
import { enrollSite } from '../../edge-client/federation/enrollment.js';
import { ApiAdminTarget } from '../../cli/admin/adminTarget.js';
import { addSite, certifyCoordinator, certifySite } from '../../cli/admin/federationAdmin.js';
import { createKeySet, readSecretKeyFile } from '../../cli/federationKeys.js';
import { MessageChannel } from '../../shared/protocol/messageChannel.js';
import { AUTH_DOMAIN, PROTOCOL_VERSIONS, type Message } from '../../shared/protocol/messages.js';
import { generateIdentity, signMessage } from '../../shared/secure/identity.js';
import { encodeBundle } from '../../shared/secure/ckks/ciphertextBundle.js';
import { CkksSecretKey } from '../../shared/secure/ckks/ckksSecretKey.js';
import { generateEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import { siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';
import { syntheticTabular } from '../../simulations/siteData.js';
import { makeTempDir } from '../helpers/paths.js';
import { waitFor } from '../helpers/federation.js';

const admin = ephemeralAdminKey();

/** An enrolled (and, unless `certify: false`, certified) site that authenticates properly, then misbehaves in the fit phase. */
async function maliciousSite(c: RunningCoordinator, name: string, onFit: (m: Extract<Message, { type: 'fit_ins' }>, ch: MessageChannel) => void, o: { certify?: boolean } = {}): Promise<{ ws: WebSocket }> {
  const target = new ApiAdminTarget({ url: c.url, token: c.adminToken });
  const { token } = await addSite(target, name, admin);
  const identity = generateIdentity();
  const enc = generateEncryptionKey();
  const res = await fetch(new URL('/v1/enroll', c.url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: token.split('.')[0], publicKey: identity.publicKeyB64, encryptionKey: enc.publicB64 }) });
  assert.equal(res.status, 200);
  if (o.certify !== false) await certifySite(target, admin, name, { fingerprint: siteKeysFingerprint(identity.publicKeyB64, enc.publicB64) });
  const ws = new WebSocket(`${c.url.replace('http', 'ws')}/v1/edge`);
  const ch = new MessageChannel(ws);
  ch.onMessage = (m) => {
    if (m.type === 'challenge') void ch.send({ type: 'auth', signature: signMessage(identity.privateKey, AUTH_DOMAIN, name, m.nonce, 'none') });
    else if (m.type === 'fit_ins') onFit(m, ch);
  };
  ws.on('open', () => void ch.send({ type: 'hello', site: name, versions: [...PROTOCOL_VERSIONS] }));
  ws.on('error', () => {});
  return { ws };
}

describe('coordinator under CKKS (in-process, instrumented)', function () {
  this.timeout(240_000);
  const t = makeTempDir();
  let c: RunningCoordinator;
  const clients: EdgeClient[] = [];
  let mallory: WebSocket;
  let eve: WebSocket;

  before(async () => {
    c = await startCoordinator({ dataDir: join(t.dir, 'coordinator'), port: 0, logLevel: 'silent' });
    const target = new ApiAdminTarget({ url: c.url, token: c.adminToken });
    await certifyCoordinator(target, admin);
    for (let i = 0; i < 3; i++) {
      const name = `h${i}`;
      const { token } = await addSite(target, name, admin);
      const enrolled = await enrollSite(c.url, token, join(t.dir, name));
      await certifySite(target, admin, name, { fingerprint: enrolled.siteFingerprint });
      const data = syntheticTabular(120, 6, 2, 40 + i);
      const client = new EdgeClient({ stateDir: join(t.dir, name), data: { train: data, test: data, source: 'synthetic' }, log: () => {} });
      client.start();
      clients.push(client);
    }
    // Mallory (certified) answers fit_ins with an encrypted vector of the wrong length.
    ({ ws: mallory } = await maliciousSite(c, 'mallory', (m, ch) => {
      const bogus = encodeBundle({ length: 7, ciphertexts: [new Uint8Array(100)] });
      void ch.send({ type: 'fit_res', experiment: m.experiment, round: m.round, numExamples: 50, metrics: { loss: 1, accuracy: 0.5 } }, bogus).catch(() => {});
    }));
    // Eve enrolled but the admin never certified her keys: she connects, and gets nothing.
    ({ ws: eve } = await maliciousSite(c, 'eve', () => assert.fail('an uncertified site was sampled'), { certify: false }));
    await waitFor('5 sites online', () => c.gateway.readySites().length === 5);
  });

  after(async () => {
    mallory?.terminate();
    eve?.terminate();
    for (const cl of clients) await cl.stop();
    await c?.close();
    t.cleanup();
  });

  it('an enrolled site the admin never certified is online but gets no CKKS key and is never sampled', async () => {
    assert.ok(c.gateway.readySites().includes('eve'));
    const view = (await c.app.inject({ method: 'GET', url: '/v1/sites/eve', headers: { authorization: `Bearer ${c.adminToken}` } })).json() as { certified: boolean; uncertifiedReason: string };
    assert.equal(view.certified, false);
    assert.match(view.uncertifiedReason, /no site certificate/);
  });

  it('receives only ciphertexts: every update it holds decrypts (with the key it never had) to a weighted update, contains none of its plaintext, and a malformed one is refused while the round completes', async () => {
    const target = { url: c.url, token: c.adminToken };
    const keyFile = join(t.dir, 'admin', 'key.json');
    const { results } = await createKeySet(target, admin, keyFile);
    assert.equal(results.filter((r) => r.granted).length, 4);
    assert.deepEqual(results.filter((r) => !r.granted).map((r) => [r.site, r.reason]), [['eve', 'not certified yet ("fedmed site certify")']]);
    const received: { site: string; payload: Buffer }[] = [];
    c.rounds.ckksObserver = (site, payload) => received.push({ site, payload: Buffer.from(payload) });
    const res = await c.app.inject({ method: 'POST', url: '/v1/experiments', headers: { authorization: `Bearer ${c.adminToken}` }, payload: { name: 'ckks-in-process', model: { zoo: 'logreg', numFeatures: 6, numClasses: 2 }, security: 'ckks', minFitClients: 3, deadlineSeconds: 60, fit: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd' } } });
    assert.equal(res.statusCode, 200, res.body);
    const exp = (res.json() as { id: string }).id;
    await c.rounds.start(exp, 2);
    await waitFor('2 rounds', () => !c.rounds.isRunning(exp), 180_000, 100);
    const rounds = (await c.store.rounds(exp));
    assert.deepEqual(rounds.map((r) => r.status), ['completed', 'completed'], JSON.stringify(rounds.map((r) => r.reason)));
    const m = rounds[0].sites.find((s) => s.site === 'mallory' && s.phase === 'fit')!;
    assert.equal(m.status, 'failed');
    assert.match(m.reason!, /encrypted update of mallory holds 7 values; this experiment needs 15/);
    assert.deepEqual(rounds.map((r) => r.security?.contributors), [3, 3]);

    // The observer saw every update the coordinator received (3 honest sites x 2 rounds + mallory's).
    const honest = received.filter((r) => r.site !== 'mallory');
    assert.equal(honest.length, 6);
    const key = await CkksSecretKey.load(Buffer.from(readSecretKeyFile(keyFile).secretKey, 'base64'));
    try {
      for (const { site, payload } of honest) {
        const values = key.decrypt(payload, 15, `update of ${site}`);
        // [w * delta, w] with w = the site's example count (120 training examples each).
        assert.ok(Math.abs(values[14] - 120) < 1e-6, `weight of ${site}: ${values[14]}`);
        assert.ok(values.slice(0, 14).some((v) => Math.abs(v) > 1e-3), 'a real update');
        const f32 = Buffer.from(Float32Array.from(values.slice(0, 14)).buffer);
        const f64 = Buffer.from(values.buffer);
        assert.equal(payload.indexOf(f32.subarray(0, 8)), -1, 'plaintext (float32) in what the coordinator received');
        assert.equal(payload.indexOf(f64.subarray(0, 16)), -1, 'plaintext (float64) in what the coordinator received');
      }
    } finally {
      key.dispose();
    }
    // The store holds the encrypted aggregates and no plaintext version after round 0.
    const versions = (await c.store.versions(exp));
    assert.deepEqual(versions.map((v) => v.paramsSha256 === null), [false, true, true]);
    assert.ok(readFileSync(join(t.dir, 'coordinator', 'ckks-versions', `${versions[2].id}.fmck`)).byteLength > 0);
  });
});
