/**
 * Limits on unauthenticated clients against a real coordinator process (coordinator/limits.ts),
 * over real sockets on loopback. Attackers connect from 127.0.0.2 and up, the honest site from
 * 127.0.0.1 (Linux routes all of 127/8 to loopback): each attack is refused with a close code or
 * a 429 naming the limit, the coordinator's memory does not move, and the honest site still
 * enrols and authenticates.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import WebSocket from 'ws';
import { addSite, certifySite } from '../../cli/admin/federationAdmin.js';
import { encodeFrame } from '../../shared/protocol/frameCodec.js';
import { MessageChannel } from '../../shared/protocol/messageChannel.js';
import { AUTH_DOMAIN, parseMessage, PROTOCOL_VERSIONS } from '../../shared/protocol/messages.js';
import { CloseCode } from '../../shared/protocol/protocolError.js';
import { generateEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import { generateIdentity, signMessage } from '../../shared/secure/identity.js';
import { siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';
import { adminApi, freePort, onlineSites, startCoordinator, stopProc, waitFor, type CoordinatorProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';

const edgeUrl = (c: CoordinatorProc): string => `${c.url.replace('http', 'ws')}/v1/edge`;

/** VmRSS of a process in KiB (Linux). */
function rssKiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]);
}

/** A raw WebSocket from `localAddress`; resolves with the close code and reason the coordinator sent. */
function attacker(c: CoordinatorProc, localAddress: string, onOpen: (ws: WebSocket) => void = () => {}): { ws: WebSocket; closed: Promise<{ code: number; reason: string }> } {
  const ws = new WebSocket(edgeUrl(c), { localAddress });
  ws.on('error', () => {});
  ws.on('open', () => onOpen(ws));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return { ws, closed };
}

/** POST over a plain socket from `localAddress`. */
function post(c: CoordinatorProc, path: string, body: unknown, localAddress: string, headers: Record<string, string> = {}): Promise<{ status: number; body: { error?: string; message?: string } }> {
  const u = new URL(path, c.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', localAddress, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as { error?: string; message?: string }) : {} }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** An enrolled, certified site that authenticates over WebSocket from 127.0.0.1 (a scripted edge). */
async function honestSite(c: CoordinatorProc, name: string): Promise<WebSocket> {
  const { token } = await addSite(adminApi(c), name, c.admin);
  const identity = generateIdentity();
  const enc = generateEncryptionKey();
  const res = await post(c, '/v1/enroll', { token: token.split('.')[0], publicKey: identity.publicKeyB64, encryptionKey: enc.publicB64 }, '127.0.0.1');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  await certifySite(adminApi(c), c.admin, name, { fingerprint: siteKeysFingerprint(identity.publicKeyB64, enc.publicB64) });
  const ws = new WebSocket(edgeUrl(c), { localAddress: '127.0.0.1' });
  const ch = new MessageChannel(ws);
  ch.onMessage = (m) => {
    if (m.type === 'challenge') void ch.send({ type: 'auth', signature: signMessage(identity.privateKey, AUTH_DOMAIN, name, m.nonce, 'none') }).catch(() => {});
  };
  ws.on('open', () => void ch.send({ type: 'hello', site: name, versions: [...PROTOCOL_VERSIONS] }).catch(() => {}));
  ws.on('error', () => {});
  await waitFor(`${name} online`, async () => (await onlineSites(c)).includes(name), 20_000);
  return ws;
}

describe('coordinator limits on unauthenticated clients (real coordinator process, loopback sockets)', function () {
  this.timeout(60_000);
  const t = makeTempDir();
  const procs: CoordinatorProc[] = [];
  const sockets: WebSocket[] = [];
  let c: CoordinatorProc;
  before(async () => {
    c = await startCoordinator(join(t.dir, 'coordinator'), await freePort(), ['--max-unauthenticated-per-address', '4', '--enroll-rate-limit', '5', '--auth-timeout-ms', '20000']);
    procs.push(c);
  });
  after(async () => {
    for (const ws of sockets) ws.terminate();
    for (const p of procs) await stopProc(p);
    t.cleanup();
  });

  it('2 unauthenticated connections announcing 512 MiB chunked transfers (and one pushing a 4 MiB frame): closed with a code, RSS moves by a few MiB at most', async () => {
    const pid = c.child.pid!;
    const before = rssKiB(pid);
    const chunked = encodeFrame({ type: 'chunked', transfer: 1, totalBytes: 512 * 1024 * 1024, sha256: 'a'.repeat(64), chunks: 131072, message: { type: 'heartbeat', t: 1 } });
    const chunk = encodeFrame({ type: 'chunk', transfer: 1, index: 0 }, new Uint8Array(1024 * 1024));
    const a = [1, 2].map(() =>
      attacker(c, '127.0.0.2', (ws) => {
        ws.send(chunked);
        ws.send(chunk, () => {});
      }),
    );
    const big = attacker(c, '127.0.0.3', (ws) => ws.send(encodeFrame({ type: 'heartbeat', t: 1 }, new Uint8Array(4 * 1024 * 1024)), () => {}));
    const results = await Promise.all([...a.map((x) => x.closed), big.closed]);
    for (const r of results.slice(0, 2)) {
      assert.equal(r.code, CloseCode.PROTOCOL_ERROR, JSON.stringify(r));
      assert.match(r.reason, /chunked transfers are accepted only after authentication/);
    }
    assert.equal(results[2].code, CloseCode.TOO_LARGE, JSON.stringify(results[2]));
    assert.match(results[2].reason, /bytes before authentication \(limit --pre-auth-bytes\)|exceeds the limit of 4096 \(pre-auth frame limit\)/);
    const after = rssKiB(pid);
    assert.ok(after - before < 8 * 1024, `RSS moved from ${before} to ${after} KiB`);
  });

  it('{"type":"constructor"} and other prototype keys are refused as unknown message types (parser and wire)', async () => {
    for (const type of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      assert.throws(() => parseMessage(JSON.parse(`{"type":"${type}"}`)), /unknown message type/, type);
    }
    const x = attacker(c, '127.0.0.4', (ws) => ws.send(Buffer.from(encodeFrame({ type: 'constructor' }))));
    const r = await x.closed;
    assert.equal(r.code, CloseCode.PROTOCOL_ERROR);
    assert.match(r.reason, /unknown message type "constructor"/);
  });

  it('per-address cap on unauthenticated connections: the 5th from one address is closed with 1013 naming the limit; an honest site still connects', async () => {
    const held = [1, 2, 3, 4].map(() => attacker(c, '127.0.0.5'));
    sockets.push(...held.map((h) => h.ws));
    await Promise.all(held.map((h) => new Promise((r) => h.ws.once('open', r))));
    const fifth = attacker(c, '127.0.0.5');
    const r = await fifth.closed;
    assert.equal(r.code, 1013, JSON.stringify(r));
    assert.match(r.reason, /too many unauthenticated connections from 127\.0\.0\.5 \(limit 4, --max-unauthenticated-per-address\)/);
    // Another address is not affected; nor is the honest site.
    const other = attacker(c, '127.0.0.6');
    sockets.push(other.ws);
    await new Promise((res) => other.ws.once('open', res));
    await new Promise((res) => setTimeout(res, 200));
    assert.equal(other.ws.readyState, WebSocket.OPEN);
    sockets.push(await honestSite(c, 'hosp-honest'));
    for (const h of held) assert.equal(h.ws.readyState, WebSocket.OPEN); // (held until the auth timeout)
    // Closing one of the held ones frees a place at that address.
    held[0].ws.terminate();
    await waitFor('a place freed', async () => {
      const again = attacker(c, '127.0.0.5');
      sockets.push(again.ws);
      const opened = await Promise.race([new Promise((res) => again.ws.once('open', () => res(true))), again.closed.then(() => false)]);
      if (!opened) return false;
      await new Promise((res) => setTimeout(res, 100));
      return again.ws.readyState === WebSocket.OPEN;
    }, 5000);
  });

  it('enrolment rate limit (failed attempts): per address and per join token, 429 naming the limit; an honest site still enrols', async () => {
    const body = { token: `fmj_${'x'.repeat(43)}`, publicKey: 'A'.repeat(43), encryptionKey: 'B'.repeat(43) };
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await post(c, '/v1/enroll', { ...body, token: `fmj_${String(i).repeat(43)}` }, '127.0.0.7')).status);
    assert.ok(statuses.slice(0, 5).every((s) => s !== 429), statuses.join());
    const limited = await post(c, '/v1/enroll', body, '127.0.0.7');
    assert.equal(limited.status, 429);
    assert.equal(limited.body.error, 'rate_limited');
    assert.match(String(limited.body.message), /too many enrolment requests from 127\.0\.0\.7: limit 5 failed or pending per 60 s per address \(--enroll-rate-limit\)/);
    // The same join token from many addresses.
    const sameToken = { ...body, token: `fmj_${'t'.repeat(43)}` };
    const perToken: number[] = [];
    for (let i = 0; i < 6; i++) perToken.push((await post(c, '/v1/enroll', sameToken, `127.0.1.${i + 1}`)).status);
    assert.deepEqual(perToken.map((s) => s === 429), [false, false, false, false, false, true]);
    const tokenLimited = await post(c, '/v1/enroll', sameToken, '127.0.1.9');
    assert.match(String(tokenLimited.body.message), /per token \(--enroll-rate-limit\)/);
    // A body above the route's limit.
    const huge = await post(c, '/v1/enroll', { ...body, publicKey: 'A'.repeat(10_000) }, '127.0.0.8');
    assert.equal(huge.status, 413);
    sockets.push(await honestSite(c, 'hosp-after-flood'));
    // Successful enrolments are not limited: an admin enrols more sites from one address than the limit.
    for (let i = 0; i < 7; i++) {
      const { token } = await addSite(adminApi(c), `bulk-${i}`, c.admin);
      const ok = await post(c, '/v1/enroll', { token: token.split('.')[0], publicKey: generateIdentity().publicKeyB64, encryptionKey: generateEncryptionKey().publicB64 }, '127.0.0.10');
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
    }
  });

  it('300 connections trickling a POST /v1/enroll body are closed by the request timeout (--request-timeout-ms 2000)', async () => {
    const slow = await startCoordinator(join(t.dir, 'slow'), await freePort(), ['--request-timeout-ms', '2000', '--enroll-rate-limit', '10000'], { certify: false });
    procs.push(slow);
    const u = new URL(slow.url);
    // An upgraded (WebSocket) connection is not an HTTP request: the request timeout does not cut it.
    const ws = attacker(slow, '127.0.0.9');
    sockets.push(ws.ws);
    await new Promise((r) => ws.ws.once('open', r));
    const start = Date.now();
    const closedAt: Promise<number>[] = [];
    const open: Socket[] = [];
    for (let i = 0; i < 300; i++) {
      const s = connect({ host: u.hostname, port: Number(u.port), localAddress: `127.0.2.${1 + (i % 200)}` });
      s.on('error', () => {});
      s.on('connect', () => s.write(`POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{`));
      open.push(s);
      closedAt.push(new Promise((r) => s.on('close', () => r(Date.now() - start))));
    }
    const trickle = setInterval(() => {
      for (const s of open) if (!s.destroyed) s.write(' ');
    }, 300);
    try {
      const times = await Promise.all(closedAt);
      const latest = Math.max(...times);
      assert.ok(latest < 4000, `the last trickling connection closed after ${latest} ms`);
      assert.ok(Math.min(...times) >= 1500, `a connection closed after ${Math.min(...times)} ms: before the timeout`);
    } finally {
      clearInterval(trickle);
      for (const s of open) s.destroy();
    }
    assert.equal(ws.ws.readyState, WebSocket.OPEN, 'the WebSocket outlived the request timeout');
    // The server still answers.
    const res = await fetch(new URL('/healthz', slow.url));
    assert.equal(res.status, 200);
  });
});
