/**
 * Impostors and relays against a real edge process: the edge only talks to a peer that proves,
 * on this very connection, that it holds a coordinator key the federation admin certified for
 * the URL the edge dials. Each refusal is checked in the edge's own log (with the reason), by
 * its exit (it stops rather than retrying into an attacker), and by what reached the peer:
 * never an auth signature, never a training result.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { join } from 'node:path';
import WebSocket, { WebSocketServer } from 'ws';
import { writeFileSync } from 'node:fs';
import { generateIdentity } from '../../shared/secure/identity.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueCoordinatorCertificate, issueRevocationList } from '../../shared/secure/trust/adminSigning.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { spawnCli, stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { loopbackCertificate } from '../helpers/testCertificate.js';
import { dataFile, fitIns, sent, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';

describe('adversary: impostor coordinators and relays against a real edge process', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const edges: EdgeUnderTest[] = [];
  const fakes: FakeCoordinator[] = [];
  after(async () => {
    for (const e of edges) await stopProc(e);
    for (const f of fakes) await f.close().catch(() => {});
    t.cleanup();
  });

  async function scenario(name: string, script: (fake: FakeCoordinator) => void, o: { honest?: boolean } = {}): Promise<{ fake: FakeCoordinator; edge: EdgeUnderTest; code: number | null }> {
    const fake = new FakeCoordinator();
    fakes.push(fake);
    await fake.start();
    script(fake);
    // Whatever else it does, the impostor pushes a fit_ins as soon as it can, to see if the edge trains.
    fake.onMessage = () => {};
    const edge = await startEdge(fake, t.dir, name);
    edges.push(edge);
    if (o.honest) {
      await waitEvent(edge, 'connected');
      return { fake, edge, code: edge.child.exitCode };
    }
    const code = await Promise.race([edge.exited, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
    return { fake, edge, code };
  }

  it('welcome without a challenge: the edge refuses, sends no auth and trains on nothing', async () => {
    const { fake, edge, code } = await scenario('no-challenge', (f) => {
      f.onHello = (m, ch) => {
        void ch.send({ type: 'welcome', site: m.site, heartbeatMs: 1000 }).then(() => {
          const { message, payload } = fitIns('exp-x', 1);
          return ch.send(message, payload);
        });
      };
    });
    assert.equal(code, 1, edge.output());
    assert.match(String(edge.event('coordinator_refused')[0]?.reason), /sent welcome before proving its identity/);
    assert.equal(sent(fake, 'auth').length, 0);
    assert.equal(sent(fake, 'fit_res').length + sent(fake, 'fit_failed').length, 0);
    assert.equal(edge.event('fit_started').length, 0);
  });

  it('a certificate from another admin key (a coordinator not certified by the pinned key): refused', async () => {
    const other = ephemeralAdminKey();
    const { fake, edge, code } = await scenario('other-admin', (f) => {
      const cert = issueCoordinatorCertificate(other, { publicKey: f.identity.publicKeyB64, urls: [f.url] });
      f.onHello = (m, ch, binding) => f.honestChallenge(m, ch, binding, { certificate: cert });
    });
    assert.equal(code, 1, edge.output());
    assert.match(String(edge.event('coordinator_refused')[0]?.reason), /certificate is refused: .*belongs to another federation/);
    assert.equal(sent(fake, 'auth').length, 0);
  });

  it('the certified certificate, but a challenge signed with another key (a stolen certificate): refused', async () => {
    const { fake, edge, code } = await scenario('stolen-cert', (f) => {
      f.onHello = (m, ch, binding) => f.honestChallenge(m, ch, binding, { key: generateIdentity() });
    });
    assert.equal(code, 1, edge.output());
    assert.match(String(edge.event('coordinator_refused')[0]?.reason), /not signed by the certified coordinator key/);
    assert.equal(sent(fake, 'auth').length, 0);
  });

  it('a certificate for another URL, or a revoked one: refused', async () => {
    const elsewhere = await scenario('other-url', (f) => {
      const cert = issueCoordinatorCertificate(f.admin, { publicKey: f.identity.publicKeyB64, urls: ['https://fl.example.org:8700'] });
      f.onHello = (m, ch, binding) => f.honestChallenge(m, ch, binding, { certificate: cert });
    });
    assert.equal(elsewhere.code, 1);
    assert.match(String(elsewhere.edge.event('coordinator_refused')[0]?.reason), /certificate is for https:\/\/fl\.example\.org:8700, not http:\/\/127\.0\.0\.1/);
    const revoked = await scenario('revoked-coordinator', (f) => {
      f.revocations = issueRevocationList(f.admin, null, [{ serial: f.certificate.body.serial, subject: 'coordinator' }]);
    });
    assert.equal(revoked.code, 1);
    assert.match(String(revoked.edge.event('coordinator_refused')[0]?.reason), /revoked by the federation admin/);
    assert.equal(sent(revoked.fake, 'auth').length, 0);
  });

  it('a welcome for another site: refused; the honest handshake connects, and a challenge after it closes the connection', async () => {
    const wrong = await scenario('wrong-welcome', (f) => {
      f.onAuth = (_site, ch) => void ch.send({ type: 'welcome', site: 'someone-else', heartbeatMs: 1000 });
    });
    assert.equal(wrong.code, 1, wrong.edge.output());
    assert.match(String(wrong.edge.event('coordinator_refused')[0]?.reason), /welcomed site "someone-else", not this site/);
    // The same fake, honest: the edge connects (the harness itself is sound) ...
    const { fake, edge, code } = await scenario('honest', () => {}, { honest: true });
    assert.equal(code, null, edge.output());
    // ... and a challenge replayed after the handshake is a protocol violation.
    await fake.send({ type: 'challenge', version: 4, nonce: 'eA', signature: 'A'.repeat(86), certificate: fake.certificate });
    await waitEvent(edge, 'disconnected');
  });

  it('plain ws:// to a coordinator that is not on loopback is refused before connecting (unless --insecure-transport)', async () => {
    const fake = new FakeCoordinator();
    fakes.push(fake);
    await fake.start();
    const stateDir = join(t.dir, 'remote');
    fake.enrolEdge(stateDir, 'remote');
    // Point the enrolled state at a non-loopback address (nothing listens there; nothing may be tried).
    const cfgPath = join(stateDir, 'site.json');
    const cfg = JSON.parse(readFileSync(cfgPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, coordinator: 'http://192.0.2.10:8700' }));
    const p = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(t.dir)]);
    assert.equal(await p.exited, 1);
    assert.match(p.output(), /refusing plain http to 192\.0\.2\.10:8700/);
    writeFileSync(cfgPath, JSON.stringify({ ...cfg, coordinator: 'http://192.0.2.10:8700', insecureTransport: true }));
    const q = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(t.dir)]);
    await waitFor('the insecure-transport warning', () => q.output().includes('"event":"insecure_transport"'), 30_000);
    await stopProc(q);
  });

  it('over TLS, a relay between the edge and the real coordinator is caught by the channel binding', async function () {
    const pem = loopbackCertificate(t.dir, 'relay');
    if (!pem) return this.skip(); // no openssl on this developer machine
    const { cert, key } = pem;
    const tls = { cert: readFileSync(cert), key: readFileSync(key) };
    // The real (certified) coordinator, over TLS.
    const fake = new FakeCoordinator();
    fakes.push(fake);
    await fake.start({ tls });
    // A relay that terminates the edge's TLS and opens its own to the coordinator, forwarding every frame.
    const relayServer = createHttpsServer(tls);
    const wss = new WebSocketServer({ server: relayServer });
    wss.on('connection', (edgeSide) => {
      const upstream = new WebSocket(`${fake.url.replace('https', 'wss')}/v1/edge`, { ca: tls.cert });
      const queue: Buffer[] = [];
      upstream.on('open', () => queue.splice(0).forEach((d) => upstream.send(d)));
      edgeSide.on('message', (d: Buffer) => (upstream.readyState === WebSocket.OPEN ? upstream.send(d) : queue.push(d)));
      upstream.on('message', (d: Buffer) => edgeSide.send(d));
      upstream.on('close', () => edgeSide.close());
      edgeSide.on('close', () => upstream.close());
      upstream.on('error', () => {});
    });
    await new Promise<void>((r) => relayServer.listen(0, '127.0.0.1', r));
    const relayUrl = `https://127.0.0.1:${(relayServer.address() as { port: number }).port}`;
    // The relay holds the address sites were told (the certificate names it) and a TLS certificate they trust.
    fake.certificate = issueCoordinatorCertificate(fake.admin, { publicKey: fake.identity.publicKeyB64, urls: [relayUrl] });
    const stateDir = join(t.dir, 'relayed');
    fake.enrolEdge(stateDir, 'relayed');
    const cfgPath = join(stateDir, 'site.json');
    writeFileSync(cfgPath, JSON.stringify({ ...(JSON.parse(readFileSync(cfgPath, 'utf8')) as object), coordinator: relayUrl }));
    const p = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(t.dir)], { NODE_EXTRA_CA_CERTS: cert });
    const code = await p.exited;
    wss.close();
    relayServer.close();
    assert.equal(code, 1, p.output());
    assert.match(p.output(), /TLS channel binding differs: a relay between this site and the coordinator/);
    assert.equal(sent(fake, 'auth').length, 0, 'no auth signature reached the coordinator through the relay');
    assert.ok(sent(fake, 'hello').length >= 1, 'the relay did forward the hello (the test exercised the real path)');
  });
});
