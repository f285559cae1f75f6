/**
 * Red team: the coordinator's observability surfaces (GET /v1/events, /v1/whoami, /metrics, the
 * static dashboard) attacked over real sockets, against a real in-process coordinator with
 * scripted — partly hostile — sites over WebSocket, and the dashboard in headless Chromium.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type WebSocket from 'ws';
import puppeteer, { type Browser } from 'puppeteer-core';
import { startCoordinator, type RunningCoordinator } from '../../../coordinator/coordinatorServer.js';
import { ApiAdminTarget } from '../../../cli/admin/adminTarget.js';
import { addSite, certifyCoordinator } from '../../../cli/admin/federationAdmin.js';
import { layoutOf } from '../../../shared/model/parameterLayout.js';
import { parseModelSpec } from '../../../shared/model/modelSpec.js';
import type { Message, MessageOf } from '../../../shared/protocol/messages.js';
import { encodeFrame } from '../../../shared/protocol/frameCodec.js';
import { ephemeralAdminKey } from '../../../shared/secure/trust/adminKey.js';
import { makeTempDir } from '../../helpers/paths.js';
import { waitFor } from '../../helpers/federation.js';
import { connectScriptedSite, type SiteSend } from '../../helpers/scriptedSite.js';

// The page's globals, as the functions that run in the page use them (this program has no DOM lib).
declare const document: { querySelectorAll(s: string): { length: number }; body: { innerText: string }; createElement(t: string): { textContent: string; setAttribute(k: string, v: string): void }; head: { append(n: unknown): void } };
declare const window: Record<string, unknown>;

const CHROMIUM = '/usr/bin/chromium';
const admin = ephemeralAdminKey();
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

type FeedEvent = { type: string; at: number; [k: string]: unknown };

/** A raw HTTP/1.1 exchange on a fresh socket: everything the server sends until it closes or `ms` pass. */
function raw(port: number, request: string | Buffer, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    let out = '';
    const done = () => {
      clearTimeout(timer);
      s.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, ms);
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('close', done);
    s.on('error', () => {});
    s.write(request);
  });
}

const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0);

/** A /v1/events subscription over fetch: status, raw text, the parsed events. */
async function openEvents(url: string, headers: Record<string, string> = {}, path = '/v1/events') {
  const abort = new AbortController();
  const res = await fetch(new URL(path, url), { headers, signal: abort.signal });
  const events: FeedEvent[] = [];
  let text = '';
  let done = false;
  const ended = (async () => {
    if (res.status !== 200 || !res.body) return void (await res.text().catch(() => ''));
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        const s = decoder.decode(chunk as Uint8Array, { stream: true });
        text += s;
        buffer += s;
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          const data = block.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
          if (data.length) events.push(JSON.parse(data.join('\n')) as FeedEvent);
        }
      }
    } catch {
      // (aborted)
    }
  })().finally(() => (done = true));
  return { status: res.status, headers: res.headers, events, text: () => text, ended, isEnded: () => done, close: () => abort.abort() };
}

/** A site that answers as `script` says (the default: a zero update and made-up metrics). */
type Script = { fit?: (m: MessageOf<'fit_ins'>, send: SiteSend) => boolean; evaluate?: (m: MessageOf<'eval_ins'>, send: SiteSend) => boolean };

function site(c: RunningCoordinator, name: string, scripts: Map<string, Script>): Promise<WebSocket> {
  return connectScriptedSite(c, admin, name, (m: Message, _payload, send) => {
    const s = scripts.get(name) ?? {};
    if (m.type === 'fit_ins') {
      if (s.fit?.(m, send)) return;
      const size = layoutOf(parseModelSpec(m.spec, 'spec')).size;
      send({ type: 'fit_res', experiment: m.experiment, round: m.round, numExamples: 10, metrics: { loss: 1, accuracy: 0.5 } }, new Uint8Array(size * 4));
    } else if (m.type === 'eval_ins') {
      if (s.evaluate?.(m, send)) return;
      send({ type: 'eval_res', experiment: m.experiment, round: m.round, numExamples: 10, metrics: { loss: 1, accuracy: 0.5 } });
    }
  });
}

/** The series of a metric family in Prometheus text. */
function series(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('red team: observability surfaces (events, whoami, metrics, dashboard) of a real coordinator', function () {
  this.timeout(240_000);
  const t = makeTempDir();
  let c: RunningCoordinator;
  let port = 0;
  const sockets: WebSocket[] = [];
  const scripts = new Map<string, Script>();
  let offered = '';
  const tokens: Record<'researcher' | 'deployer', { id: string; token: string }> = { researcher: { id: '', token: '' }, deployer: { id: '', token: '' } };
  const auth = (token = c.adminToken) => ({ authorization: `Bearer ${token}` });
  const inject = async <T = unknown>(method: 'GET' | 'POST' | 'DELETE', url: string, payload?: unknown, token = c.adminToken) => {
    const r = await c.app.inject({ method, url, headers: auth(token), ...(payload === undefined ? {} : { payload: payload as object }) });
    return { status: r.statusCode, body: (r.body ? r.json() : null) as T };
  };
  const newToken = async (role: string, extra: Record<string, unknown> = {}) => {
    const r = await inject<{ id: string; token: string }>('POST', '/v1/tokens', { role, ...extra });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };
  const createExperiment = async (name: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const r = await inject<{ id: string }>('POST', '/v1/experiments', { name, model: { zoo: 'logreg', numFeatures: 6, numClasses: 2 }, minFitClients: 1, deadlineSeconds: 20, fit: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd' }, ...extra }, tokens.researcher.token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.id;
  };
  const runRounds = async (experiment: string, n: number) => {
    c.rounds.start(experiment, n);
    await waitFor(`rounds of ${experiment}`, () => !c.rounds.isRunning(experiment), 180_000, 20);
  };

  before(async () => {
    c = await startCoordinator({ dataDir: join(t.dir, 'coordinator'), port: 0, logLevel: 'silent', eventStreams: { heartbeatMs: 500 } });
    port = Number(new URL(c.url).port);
    await certifyCoordinator(new ApiAdminTarget({ url: c.url, token: c.adminToken }), admin);
    tokens.researcher = await newToken('researcher', { name: 'red researcher' });
    tokens.deployer = await newToken('deployer');
    for (const s of ['honest', 'hostile']) sockets.push(await site(c, s, scripts));
    await waitFor('2 sites online', () => c.gateway.readySites().length === 2);
    // A version published to every site: the coordinator records model reports only about versions
    // it offered the site, so the hostile site's reports below name this one.
    const first = (await inject<{ id: string }[]>('GET', `/v1/experiments/${await createExperiment('offered')}/versions`)).body[0].id;
    assert.equal((await inject('POST', '/v1/deployment/publish', { version: first }, tokens.deployer.token)).status, 200);
    await waitFor('the version offered to the hostile site', () => c.store.data.siteOffers?.find((x) => x.site === 'hostile')?.versions.includes(first), 20_000, 20);
    offered = first;
  });

  after(async () => {
    for (const ws of sockets) ws.terminate();
    await c?.close();
    t.cleanup();
  });

  describe('GET /v1/events and /v1/whoami: authentication', () => {
    it('no, malformed, unknown, revoked or expired token, or a token outside the Authorization header: 401, no stream', async () => {
      const revoked = await newToken('researcher');
      assert.equal((await inject('DELETE', `/v1/tokens/${revoked.id}`)).status, 200);
      const expired = await newToken('researcher', { expiresDays: 1 });
      await c.store.update((d) => void (d.apiTokens.find((x) => x.id === expired.id)!.expiresAt = new Date(Date.now() - 1000).toISOString()));
      const { token: join } = await addSite(new ApiAdminTarget({ url: c.url, token: c.adminToken }), 'joiner', admin);
      const valid = tokens.researcher.token;
      const cases: [string, Record<string, string>, string?][] = [
        ['no header', {}],
        ['empty bearer', { authorization: 'Bearer ' }],
        ['Basic', { authorization: `Basic ${Buffer.from(`x:${valid}`).toString('base64')}` }],
        ['lower-case scheme', { authorization: `bearer ${valid}` }],
        ['token without scheme', { authorization: valid }],
        ['garbage', { authorization: 'Bearer fma_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
        ['the token\'s hash', { authorization: `Bearer ${sha256(valid)}` }],
        ['a prefix of a token', { authorization: `Bearer ${valid.slice(0, 12)}` }],
        ['a token with junk appended', { authorization: `Bearer ${valid}x` }],
        ['a join token', { authorization: `Bearer ${join}` }],
        ['revoked', { authorization: `Bearer ${revoked.token}` }],
        ['expired', { authorization: `Bearer ${expired.token}` }],
        ['token in the query string', {}, `?token=${valid}&access_token=${valid}&authorization=Bearer%20${valid}`],
        ['token in a cookie', { cookie: `token=${valid}; authorization=Bearer ${valid}; fedmed.apiToken=${valid}` }],
        ['token in another header', { 'x-api-token': valid, 'x-authorization': `Bearer ${valid}`, 'proxy-authorization': `Bearer ${valid}` }],
      ];
      for (const [what, headers, query = ''] of cases) {
        for (const path of ['/v1/events', '/v1/whoami', '/metrics']) {
          const s = await openEvents(c.url, headers, `${path}${query}`);
          assert.equal(s.status, 401, `${what} on ${path}: HOLE, answered ${s.status}`);
          assert.doesNotMatch(s.headers.get('content-type') ?? '', /event-stream/, what);
          s.close();
        }
      }
      // Raw: a second Authorization header, an auth header split over obs-fold: still refused.
      for (const req of [`GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer junk\r\nAuthorization: Bearer ${valid}\r\n\r\n`, `GET /v1/events?token=${valid} HTTP/1.1\r\nHost: x\r\n\r\n`]) {
        const r = await raw(port, req, 500);
        assert.ok([400, 401].includes(statusOf(r)), `HOLE: ${JSON.stringify(req.slice(0, 60))} answered ${r.slice(0, 80)}`);
      }
      assert.equal(c.events.listenerCount, baseListeners(), 'no subscriber was added');
    });

    it('whoami shows the caller\'s role and id only: never the token, its hash, or another token', async () => {
      const all = c.store.data.apiTokens;
      for (const [role, token] of [['admin', c.adminToken], ['researcher', tokens.researcher.token], ['deployer', tokens.deployer.token]] as const) {
        const r = await fetch(new URL('/v1/whoami', c.url), { headers: auth(token) });
        assert.equal(r.status, 200);
        const text = await r.text();
        const body = JSON.parse(text) as Record<string, unknown>;
        assert.equal(body.role, role);
        assert.deepEqual(Object.keys(body).filter((k) => !['role', 'id', 'name'].includes(k)), [], `whoami has extra fields: ${text}`);
        const own = all.find((x) => x.sha256 === sha256(token))!;
        assert.equal(body.id, own.id);
        for (const x of all) assert.ok(!text.includes(x.sha256), 'HOLE: a token hash in whoami');
        for (const x of all.filter((y) => y.id !== own.id)) assert.ok(!text.includes(x.id), 'HOLE: another token\'s id in whoami');
        for (const secret of [c.adminToken, tokens.researcher.token, tokens.deployer.token]) assert.ok(!text.includes(secret), 'HOLE: a token secret in whoami');
      }
      // (whoami does not open the admin's token list to other roles)
      assert.equal((await inject('GET', '/v1/tokens', undefined, tokens.researcher.token)).status, 403);
    });
  });

  // Listeners the coordinator itself keeps on the bus (metrics); every stream adds one.
  let base = -1;
  const baseListeners = () => (base < 0 ? (base = c.events.listenerCount) : base);

  describe('GET /v1/events: what a reader sees', () => {
    it('a reader\'s stream carries no token secret, token hash, join token or site secret while an admin mints tokens and adds sites', async () => {
      baseListeners();
      const s = await openEvents(c.url, auth(tokens.deployer.token));
      assert.equal(s.status, 200);
      await waitFor('hello', () => s.events.find((e) => e.type === 'hello'));
      const minted = [await newToken('admin', { name: 'second admin' }), await newToken('researcher')];
      const { token: joinToken } = await addSite(new ApiAdminTarget({ url: c.url, token: c.adminToken }), 'newsite', admin);
      await inject('DELETE', `/v1/tokens/${minted[1].id}`);
      await waitFor('the token and site events', () => s.events.filter((e) => e.type === 'token').length >= 3 && s.events.some((e) => e.type === 'site' && e.site === 'newsite'), 10_000, 20);
      s.close();
      const text = s.text();
      const secrets = [c.adminToken, tokens.researcher.token, tokens.deployer.token, ...minted.map((m) => m.token), joinToken, joinToken.split('.')[0], ...c.store.data.apiTokens.map((x) => x.sha256), ...c.store.data.sites.flatMap((x) => Object.values(x).filter((v): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v)))];
      for (const secret of secrets) assert.ok(!text.includes(secret), `HOLE: the event stream of a deployer carries a secret (${secret.slice(0, 10)}…)`);
      assert.doesNotMatch(text, /fma_|"(sha256|token|secret|joinToken|privateKey)"\s*:/, 'no credential-shaped field');
      for (const e of s.events.filter((x) => x.type === 'token')) assert.deepEqual(Object.keys(e).sort(), ['at', 'change', 'id', 'type']);
    });

    it('a hostile site\'s reasons cannot inject SSE frames (newlines, CR, "data:" and "event:" lines are escaped in one JSON line)', async () => {
      const injected = 'x\n\ndata: {"type":"token","id":"forged","change":"created","at":1}\n\nevent: close\r\ndata: {"type":"hello","role":"admin"}\r\r\n\u2028\u2029';
      scripts.set('hostile', { fit: (m, send) => (send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: injected }), true) });
      const s = await openEvents(c.url, auth(tokens.researcher.token));
      const exp = await createExperiment('sse-injection');
      await runRounds(exp, 1);
      const failed = await waitFor('the hostile site\'s failed phase', () => s.events.find((e) => e.type === 'phase' && e.site === 'hostile' && e.status === 'failed'), 10_000, 20);
      await waitFor('the round end', () => s.events.find((e) => e.type === 'round' && e.experiment === exp && e.status !== 'started'), 10_000, 20);
      s.close();
      scripts.delete('hostile');
      assert.ok(String(failed.reason).includes('data: {"type":"token","id":"forged"'), `the reason arrives as data, intact: ${JSON.stringify(failed.reason)}`);
      assert.ok(!s.events.some((e) => e.type === 'token' && e.id === 'forged'), 'HOLE: a forged event was injected into the stream');
      assert.equal(s.events.filter((e) => e.type === 'hello').length, 1, 'HOLE: a forged hello was injected');
      for (const line of s.text().split('\n')) assert.ok(line === '' || line.startsWith('data: ') || line.startsWith(': ') || line.startsWith('retry: '), `HOLE: a stray SSE line ${JSON.stringify(line.slice(0, 80))}`);
    });
  });

  describe('GET /v1/events: bounds', () => {
    it('beyond 32 streams: 503; the coordinator still serves everything else; the slots come back when streams close', async () => {
      const streams = [];
      for (let i = 0; i < 32; i++) {
        const s = await openEvents(c.url, auth(tokens.researcher.token));
        assert.equal(s.status, 200, `stream ${i}`);
        streams.push(s);
      }
      for (let i = 0; i < 5; i++) {
        const extra = await openEvents(c.url, auth(c.adminToken));
        assert.equal(extra.status, 503, 'HOLE: more than 32 streams');
        assert.equal(extra.headers.get('retry-after'), '30');
      }
      assert.equal((await fetch(new URL('/healthz', c.url))).status, 200);
      assert.equal((await fetch(new URL('/v1/whoami', c.url), { headers: auth() })).status, 200);
      assert.equal((await fetch(new URL('/metrics', c.url), { headers: auth() })).status, 200);
      assert.equal((await fetch(new URL('/', c.url))).status, 200);
      assert.equal(c.events.listenerCount, baseListeners() + 32);
      for (const s of streams) s.close();
      await waitFor('the streams to be released', () => c.events.listenerCount === baseListeners(), 5000, 20);
      const again = await openEvents(c.url, auth(c.adminToken));
      assert.equal(again.status, 200);
      again.close();
      await waitFor('released', () => c.events.listenerCount === baseListeners(), 5000, 20);
    });

    it('a stream ends when its token is revoked (at once) or expires (by the next heartbeat)', async () => {
      const a = await newToken('researcher');
      const b = await newToken('researcher');
      const sa = await openEvents(c.url, auth(a.token));
      const sb = await openEvents(c.url, auth(b.token));
      await waitFor('hellos', () => sa.events.length && sb.events.length);
      await inject('DELETE', `/v1/tokens/${a.id}`);
      await waitFor('the revoked token\'s stream to end', () => sa.isEnded(), 3000, 20);
      await c.store.update((d) => void (d.apiTokens.find((x) => x.id === b.id)!.expiresAt = new Date(Date.now() - 1).toISOString()));
      await waitFor('the expired token\'s stream to end', () => sb.isEnded(), 3000, 20);
      await waitFor('released', () => c.events.listenerCount === baseListeners(), 3000, 20);
    });

    it('400 connects that hang up at every stage (mid-request, right after it, on the first byte, with RST, pipelined) leak no subscriber or slot', async () => {
      const before = process.memoryUsage().rss;
      const request = `GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.researcher.token}\r\n\r\n`;
      const stages = [
        (s: Socket) => s.end(request.slice(0, 40)), // half a request, then FIN
        (s: Socket) => s.end(request), // the request and FIN at once
        (s: Socket) => (s.write(request), s.destroy()), // the request, then close at once
        (s: Socket) => (s.write(request), s.resetAndDestroy()), // the request, then RST
        (s: Socket) => (s.write(request), void setImmediate(() => s.resetAndDestroy())),
        (s: Socket) => (s.write(request), s.once('data', () => s.destroy())), // on the first bytes
        (s: Socket) => (s.write(request), s.once('data', () => s.resetAndDestroy())),
        (s: Socket) => (s.write(request + request), s.once('data', () => s.end())), // pipelined: the second waits behind the first
        (s: Socket) => (s.write(request + request + request), s.once('data', () => s.resetAndDestroy())),
        (s: Socket) => (s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n${request}`), s.once('data', () => void setTimeout(() => s.destroy(), 20))),
      ];
      for (let round = 0; round < 40; round++) {
        await Promise.all(
          stages.map(
            (stage) =>
              new Promise<void>((resolve) => {
                const s = connect(port, '127.0.0.1');
                s.on('error', () => {});
                s.on('close', () => resolve());
                s.on('connect', () => stage(s));
                setTimeout(() => (s.destroy(), resolve()), 300);
              }),
          ),
        );
      }
      await waitFor(`the streams of 400 hung-up clients to be released (listeners ${c.events.listenerCount}, base ${baseListeners()})`, () => c.events.listenerCount === baseListeners(), 10_000, 50);
      const streams = [];
      for (let i = 0; i < 32; i++) streams.push(await openEvents(c.url, auth(tokens.researcher.token)));
      assert.deepEqual(streams.map((s) => s.status), Array(32).fill(200), 'HOLE: hung-up clients left stream slots taken');
      for (const s of streams) s.close();
      await waitFor('released', () => c.events.listenerCount === baseListeners(), 5000, 20);
      const grew = (process.memoryUsage().rss - before) / 2 ** 20;
      assert.ok(grew < 100, `RSS grew ${grew.toFixed(0)} MiB over 400 hung-up streams`);
    });

    it('a reader that never reads (socket paused) while a hostile site floods events is cut at ~1 MiB; RSS stays bounded; other readers keep up', async () => {
      // The slow reader: sends the request, reads the response head, then stops reading for good.
      const slow = connect(port, '127.0.0.1');
      slow.on('error', () => {});
      await new Promise<void>((resolve) => slow.on('connect', () => resolve()));
      slow.write(`GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.researcher.token}\r\n\r\n`);
      await new Promise<void>((resolve) => slow.once('data', () => (slow.pause(), resolve())));
      const fast = await openEvents(c.url, auth(tokens.researcher.token));
      assert.equal(c.events.listenerCount, baseListeners() + 2);
      const rss0 = process.memoryUsage().rss;
      // The flood: the hostile site reports model status as fast as its socket takes it (each
      // report a deployment event to every stream), with 2,000-character reasons.
      const version = offered;
      let sent = 0;
      const until = Date.now() + 90_000;
      let maxRss = rss0;
      const ws = sockets[1];
      while (c.events.listenerCount > baseListeners() + 1 && Date.now() < until) {
        for (let i = 0; i < 100; i++) ws.send(encodeFrame({ type: 'model_status', version, status: 'refused', reason: `r${sent++} ${'<y>'.repeat(660)}` }));
        await new Promise((r) => setTimeout(r, 10));
        maxRss = Math.max(maxRss, process.memoryUsage().rss);
      }
      console.log(`      (${sent} model_status reports sent; the fast reader got ${fast.events.length} events, ${(fast.text().length / 2 ** 20).toFixed(1)} MiB; RSS +${((maxRss - rss0) / 2 ** 20).toFixed(0)} MiB)`);
      assert.equal(c.events.listenerCount, baseListeners() + 1, 'HOLE: the reader that never reads was never cut');
      assert.ok(!fast.isEnded(), 'the reader that keeps up is still connected');
      assert.ok((maxRss - rss0) / 2 ** 20 < 200, `RSS grew ${((maxRss - rss0) / 2 ** 20).toFixed(0)} MiB`);
      fast.close();
      slow.destroy();
      await waitFor('released', () => c.events.listenerCount === baseListeners(), 5000, 20);
    });
  });

  describe('GET /metrics: label cardinality', () => {
    const scrape = async () => {
      const r = await fetch(new URL('/metrics', c.url), { headers: auth() });
      assert.equal(r.status, 200);
      return r.text();
    };

    it('5,000 requests to random URLs, methods and parameters (with and without tokens) add no per-URL series', async () => {
      const before = series(await scrape(), 'fedmed_coordinator_api_requests_total');
      const methods = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];
      const paths = [() => `/${randomBytes(6).toString('hex')}`, () => `/v1/sites/${randomBytes(6).toString('hex')}`, () => `/v1/experiments/${randomBytes(6).toString('hex')}/rounds?x=${randomBytes(4).toString('hex')}`, () => `/dashboard/${randomBytes(6).toString('hex')}.js`, () => `/v1/versions/${randomBytes(32).toString('hex')}/params`, () => `/metrics/${randomBytes(3).toString('hex')}`, () => `/%${randomBytes(1).toString('hex')}${randomBytes(4).toString('hex')}`];
      for (let i = 0; i < 5000; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, async (_, j) => {
            const k = i + j;
            const method = methods[k % methods.length];
            const path = paths[k % paths.length]();
            const headers: Record<string, string> = k % 3 === 0 ? {} : auth(k % 3 === 1 ? tokens.researcher.token : `fma_${randomBytes(8).toString('hex')}`);
            const r = await c.app.inject({ method: method as 'GET', url: path, headers, ...(method === 'POST' || method === 'PUT' || method === 'PATCH' ? { payload: { x: k } } : {}) });
            void r;
          }),
        );
      }
      // A few over a real socket too (the request line as the client writes it).
      for (let i = 0; i < 20; i++) await raw(port, `GET /${randomBytes(8).toString('hex')}/../x HTTP/1.1\r\nHost: x\r\n\r\n`, 200);
      const after = series(await scrape(), 'fedmed_coordinator_api_requests_total');
      const added = after.filter((l) => !before.some((b) => b.replace(/ \S+$/, '') === l.replace(/ \S+$/, '')));
      assert.ok(added.length <= 60, `HOLE: ${added.length} new api_requests_total series after 5,000 random requests:\n${added.slice(0, 10).join('\n')}`);
      for (const l of after) assert.doesNotMatch(l, /route="\/(?!v1\/|metrics|healthz|docs|dashboard\/|")|[0-9a-f]{12}/, `a URL, not a route pattern, as a label: ${l}`);
      assert.ok(after.some((l) => l.includes('route="unmatched"')), 'unmatched requests are counted under one label');
    });

    it('a hostile site\'s made-up refusal kinds and reasons add no updates_refused_total series', async () => {
      const before = series(await scrape(), 'fedmed_coordinator_updates_refused_total');
      // Reasons are free text (not labels); refusal kinds outside the protocol's list are refused
      // at the wire (the liar's session is closed): a fresh liar site for each attempt.
      scripts.set('hostile', { fit: (m, send) => (send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: `policy ${randomBytes(8).toString('hex')}`, refused: 'policy' }), true) });
      const exp = await createExperiment('cardinality', { deadlineSeconds: 3 });
      await runRounds(exp, 3);
      for (let i = 0; i < 2; i++) {
        const name = `liar-${i}`;
        const kind = `kind_${randomBytes(4).toString('hex')}` as 'policy';
        scripts.set(name, {
          fit: (m, send) => (send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: kind, refused: kind }), true),
          evaluate: (m, send) => (send({ type: 'eval_failed', experiment: m.experiment, round: m.round, reason: kind, refused: kind }), true),
        });
        const ws = await site(c, name, scripts);
        await waitFor(`${name} online`, () => c.gateway.isOnline(name), 10_000, 20);
        await runRounds(exp, 1);
        ws.terminate();
      }
      scripts.delete('hostile');
      const after = series(await scrape(), 'fedmed_coordinator_updates_refused_total');
      assert.deepEqual(after.map((l) => l.replace(/ \S+$/, '')).sort(), before.map((l) => l.replace(/ \S+$/, '')).sort(), 'HOLE: a site-chosen refusal kind became a label value');
      for (const l of after) assert.match(l, /reason="(privacy_budget|approval_pending|experiment_rejected|policy|invalid_update|secagg_refused|protocol_violation)"/);
    });
  });

  describe('the static dashboard routes', () => {
    const SECURITY = ['content-security-policy', 'x-frame-options', 'x-content-type-options'];

    it('no traversal or encoded path reaches a file outside the dashboard; every file answer carries CSP, DENY framing and nosniff', async () => {
      const bad = ['/dashboard/../package.json', '/dashboard/%2e%2e/package.json', '/dashboard/%2E%2E%2Fpackage.json', '/dashboard/..%2f..%2fpackage.json', '/dashboard/%252e%252e/package.json', '/dashboard/..\\..\\package.json', '/dashboard/main.js%00.png', '/dashboard/main.ts', '/dashboard/main.js.map', '/dashboard/main.d.ts', '/dashboard/', '/dashboard', '/dashboard/vendor/', '/dashboard/vendor/uPlot.esm.d.ts', '/dashboard/../../coordinator/admin.token', '/dashboard/%2e%2e/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc/passwd', '/index.html', '/admin.token', '/store.json', '/dashboard/tsconfig.json', '/dashboard/copyAssets.mjs'];
      for (const path of bad) {
        const r = await raw(port, `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.ok([400, 404].includes(statusOf(r)), `HOLE: ${path} answered ${r.slice(0, 200)}`);
        assert.doesNotMatch(r, /"name": "fedmed"|root:x:0|fma_/, path);
      }
      for (const [method, path] of [['GET', '/'], ['HEAD', '/'], ['GET', '/dashboard/main.js'], ['HEAD', '/dashboard/main.js'], ['GET', '/dashboard/style.css'], ['GET', '/dashboard/vendor/uPlot.esm.js'], ['GET', '/?x=<script>'], ['GET', '/dashboard/main.js?v=1']]) {
        const r = await fetch(new URL(path, c.url), { method });
        assert.equal(r.status, 200, `${method} ${path}`);
        for (const h of SECURITY) assert.ok(r.headers.get(h), `${method} ${path} lacks ${h}`);
        const csp = r.headers.get('content-security-policy')!;
        assert.match(csp, /script-src 'self'(;|$)/);
        assert.match(csp, /frame-ancestors 'none'/);
        assert.match(csp, /object-src 'none'/);
        assert.match(csp, /base-uri 'none'/);
        assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*|data:[^;]*script|http:|https:/);
        assert.equal(r.headers.get('x-frame-options'), 'DENY');
        assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
        assert.doesNotMatch(r.headers.get('access-control-allow-origin') ?? '', /./, 'no CORS');
      }
      // OPTIONS and other methods on the dashboard: nothing served (no CORS preflight opens it).
      for (const method of ['OPTIONS', 'POST', 'PUT', 'DELETE', 'TRACE']) {
        const r = await raw(port, `${method} / HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        assert.ok([400, 404, 405].includes(statusOf(r)), `${method} / answered ${r.slice(0, 120)}`);
        assert.doesNotMatch(r, /access-control-allow-origin/i, `${method}: CORS`);
      }
    });

    it('huge headers, a huge URL and many headers are refused (431/414/400) and the coordinator keeps serving', async () => {
      const huge = [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(200_000)}\r\n\r\n`, `GET /dashboard/${'a'.repeat(200_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, `GET / HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 5000 }, (_, i) => `X-H${i}: v`).join('\r\n')}\r\n\r\n`, `GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${'fma_'.padEnd(100_000, 'A')}\r\n\r\n`];
      for (const req of huge) {
        const r = await raw(port, req, 3000);
        assert.ok(r === '' || [400, 401, 413, 414, 431].includes(statusOf(r)), `answered ${r.slice(0, 120)}`);
      }
      assert.equal((await fetch(new URL('/', c.url))).status, 200);
      assert.equal(c.events.listenerCount, baseListeners());
    });
  });

  describe('the dashboard in headless Chromium: markup from hostile sites, researchers and token names', function () {
    let browser: Browser | undefined;
    const EXP_NAME = `<img src=x onerror="window.__pwned='experiment'"></option><script>window.__pwned='option'</script>`;
    const REFUSAL = `<img src=x onerror="window.__pwned='refusal'">policy says no`;
    const FAILURE = `<script>window.__pwned='fit'</script>local failure`;
    const EVAL = `<iframe src="javascript:window.top.__pwned='eval'"></iframe>eval withheld`;
    const MODEL = `<svg onload="window.__pwned='model'"></svg>model refused`;
    const TOKEN_NAME = `<b onmouseover="window.__pwned='who'">reader</b>`;
    let reader = '';
    let exp = '';

    before(async function () {
      if (!existsSync(CHROMIUM)) {
        if (process.env.CI) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
        console.log(`      (skipped: ${CHROMIUM} is missing; install Debian's chromium to run the dashboard XSS attacks)`);
        return this.skip();
      }
      const launched = puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'], userDataDir: join(t.dir, 'chromium-profile') });
      reader = (await newToken('researcher', { name: TOKEN_NAME })).token;
      exp = await createExperiment(EXP_NAME);
      // Round 1: the hostile site refuses (policy) with markup; round 2: fails with markup, then withholds its evaluation with markup.
      scripts.set('hostile', { fit: (m, send) => (send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: m.round === 1 ? REFUSAL : FAILURE, ...(m.round === 1 ? { refused: 'policy' as const } : {}) }), true), evaluate: (m, send) => (send({ type: 'eval_failed', experiment: m.experiment, round: m.round, reason: EVAL }), true) });
      await runRounds(exp, 2);
      scripts.set('hostile', { fit: (m, send) => (send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: FAILURE }), true), evaluate: (m, send) => (send({ type: 'eval_failed', experiment: m.experiment, round: m.round, reason: EVAL }), true) });
      await runRounds(exp, 1);
      sockets[1].send(encodeFrame({ type: 'model_status', version: offered, status: 'refused', reason: MODEL }));
      await waitFor('the model report', () => c.store.data.siteModels?.find((x) => x.site === 'hostile')?.reason === MODEL, 10_000, 20);
      browser = await launched;
    });
    after(async () => {
      scripts.delete('hostile');
      await browser?.close();
    });

    it('no injected markup runs or becomes an element in any view; every string shows as text; CSP blocks inline script anyway; the token stays out of URLs', async () => {
      const page = await browser!.newPage();
      const dialogs: string[] = [];
      const urls: string[] = [];
      page.on('dialog', (d) => void (dialogs.push(d.message()), d.dismiss()));
      page.on('request', (r) => void urls.push(r.url()));
      await page.evaluateOnNewDocument(() => {
        (window as unknown as { addEventListener(t: string, f: (e: { violatedDirective: string }) => void): void }).addEventListener('securitypolicyviolation', (e) => void ((window.__csp as string[] | undefined) ?? (window.__csp = [])).push(e.violatedDirective));
      });
      await page.goto(c.url, { waitUntil: 'load' });
      await page.waitForSelector('#token', { visible: true });
      await page.type('#token', reader);
      await page.click('#signin-button');
      await page.waitForSelector('#feed-state[data-state="live"]', { timeout: 15_000 });
      await page.select('#experiment-select', exp);
      // Live too: a markup reason arriving over the event stream while the page is open.
      scripts.set('hostile', { fit: (m, send) => (send({ type: 'fit_failed', experiment: m.experiment, round: m.round, reason: `live ${FAILURE}` }), true), evaluate: (m, send) => (send({ type: 'eval_failed', experiment: m.experiment, round: m.round, reason: `live ${EVAL}` }), true) });
      await page.click('#nav-rounds');
      await runRounds(exp, 1);
      const texts: Record<string, string> = {};
      for (const v of ['federation', 'rounds', 'metrics', 'privacy', 'deployment', 'audit']) {
        await page.click(`#nav-${v}`);
        await page.waitForSelector(`#view-${v}:not([hidden])`);
        await new Promise((r) => setTimeout(r, 300));
        texts[v] = await page.evaluate(() => document.body.innerText);
      }
      const all = Object.values(texts).join('\n');
      const html = await page.content();
      for (const [what, literal, view] of [['the experiment name', EXP_NAME, 'rounds'], ['the refusal reason', REFUSAL, 'federation'], ['the failure reason', FAILURE, 'rounds'], ['the model status reason', MODEL, 'deployment'], ['the token name', TOKEN_NAME, 'federation']] as const) {
        assert.ok(texts[view].includes(literal) || all.includes(literal), `${what} is not shown literally (as text)`);
      }
      const pwned = await page.evaluate(() => window.__pwned ?? null);
      assert.equal(pwned, null, `HOLE: injected script ran (${String(pwned)})`);
      assert.deepEqual(dialogs, [], 'HOLE: a dialog opened');
      const injected = await page.evaluate(() => document.querySelectorAll('img[src="x"], script:not([src]), iframe, svg[onload], [onerror], [onload], [onmouseover], b').length);
      assert.equal(injected, 0, 'HOLE: markup from the API became elements');
      assert.deepEqual(await page.evaluate(() => window.__csp ?? []), [], 'nothing even tried to break the CSP');
      assert.ok(!html.includes('<img src="x"'), 'no injected markup in the DOM');
      // Defence in depth: the CSP itself refuses an inline script, should one ever be injected.
      await page.evaluate(() => {
        const el = document.createElement('script');
        el.textContent = 'window.__inline = 1';
        document.head.append(el);
      });
      assert.equal(await page.evaluate(() => window.__inline ?? null), null, 'HOLE: the CSP lets an inline script run');
      assert.ok(((await page.evaluate(() => window.__csp)) as string[]).some((d) => d.startsWith('script-src')), 'the CSP reported the blocked inline script');
      for (const u of urls) assert.ok(!u.includes(reader) && !u.includes(reader.slice(4, 20)), `HOLE: the token in a URL: ${u}`);
      assert.ok(urls.every((u) => u.startsWith(c.url) || u.startsWith('data:')), `a request to another origin: ${urls.filter((u) => !u.startsWith(c.url)).join(', ')}`);
      await page.close();
    });
  });
});
