/**
 * The event feed end to end (GET /v1/events, Server-Sent Events) with a coordinator and 3 edges
 * as processes on loopback: one SecAgg+ round shows every site's phases in order, the round,
 * version and metrics events; the feed needs a token, is capped, and ends when its token is revoked.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

type FeedEvent = { type: string; at: number; [k: string]: unknown };

/** A /v1/events subscription read with fetch: its status, the events so far, and whether it ended. */
interface EventStream {
  status: number;
  events: FeedEvent[];
  ended: Promise<void>;
  isEnded(): boolean;
  waitFor(what: string, pred: (e: FeedEvent) => boolean, timeoutMs?: number): Promise<FeedEvent>;
  close(): void;
}

async function openEvents(url: string, token?: string): Promise<EventStream> {
  const abort = new AbortController();
  const res = await fetch(new URL('/v1/events', url), { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: abort.signal });
  const events: FeedEvent[] = [];
  let done = false;
  const ended = (async () => {
    if (res.status !== 200 || !res.body) {
      await res.text().catch(() => {});
      return;
    }
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += decoder.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          for (const line of block.split('\n')) if (line.startsWith('data: ')) events.push(JSON.parse(line.slice(6)) as FeedEvent);
        }
      }
    } catch {
      // (aborted by close())
    }
  })().finally(() => (done = true));
  return {
    status: res.status,
    events,
    ended,
    isEnded: () => done,
    waitFor: (what, pred, timeoutMs = 60_000) => waitFor(what, () => events.find(pred) ?? (done ? Promise.reject(new Error(`stream ended before ${what}`)) : undefined), timeoutMs, 20),
    close: () => abort.abort(),
  };
}

describe('event feed end to end: GET /v1/events over a SecAgg+ round with 3 edges as processes', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  let coord: CoordinatorProc;
  const edges = new Map<string, Proc>();
  const names = ['site-a', 'site-b', 'site-c'];
  let readerToken = '';
  const streams: EventStream[] = [];
  const open = async (token?: string): Promise<EventStream> => {
    const s = await openEvents(coord.url, token);
    streams.push(s);
    return s;
  };

  before(async () => {
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    await Promise.all(
      names.map(async (site, i) => {
        const r = await runCli(['make-synthetic', '--out', join(t.dir, `${site}.npz`), '--n', '120', '--seed', String(20 + i), '--noise', '0.3']);
        assert.equal(r.code, 0, r.stderr);
      }),
    );
    for (const site of names) {
      await enrol(coord, site, join(t.dir, site));
      edges.set(site, spawnCli(['edge', 'start', '--state-dir', join(t.dir, site), '--data', join(t.dir, `${site}.npz`)]));
    }
    const created = await call<{ token: string }>(coord, 'POST', '/v1/tokens', { role: 'researcher', name: 'dashboard' });
    assert.equal(created.status, 200);
    readerToken = created.body.token;
    await waitFor('3 edges online', async () => (await onlineSites(coord)).length === 3);
  });

  after(async () => {
    for (const s of streams) s.close();
    for (const p of edges.values()) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('401 without a valid token; /v1/whoami names the token', async () => {
    assert.equal((await open()).status, 401);
    assert.equal((await open('fma_not-a-token')).status, 401);
    const who = await call<{ role: string; id: string; name?: string }>(coord, 'GET', '/v1/whoami', undefined, readerToken);
    assert.equal(who.status, 200);
    assert.equal(who.body.role, 'researcher');
    assert.equal(who.body.name, 'dashboard');
    assert.match(who.body.id, /^[0-9a-f-]{36}$/);
    assert.equal((await call(coord, 'GET', '/v1/whoami', undefined, 'fma_nope')).status, 401);
  });

  it('one SecAgg+ round: hello, then every site\'s phases in order, the round, version and metrics events', async () => {
    const feed = await open(readerToken);
    assert.equal(feed.status, 200);
    const hello = await feed.waitFor('hello', (e) => e.type === 'hello');
    assert.equal(hello.role, 'researcher');
    assert.equal(feed.events[0], hello);
    const experiment = await createExperiment(coord, { name: 'events-e2e', security: 'secagg', secagg: { bits: 16, range: 0.5 }, minFitClients: 3, fit: { epochs: 1, batchSize: 32, learningRate: 0.0005, optimizer: 'adam' } });
    await feed.waitFor('the experiment created', (e) => e.type === 'experiment' && e.experiment === experiment && e.change === 'created', 10_000);
    const start = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    const ended = await feed.waitFor('the round to end', (e) => e.type === 'round' && e.experiment === experiment && e.status !== 'started', 90_000);
    assert.equal(ended.status, 'completed', JSON.stringify(ended));
    const ofRound = feed.events.filter((e) => e.experiment === experiment);
    const started = ofRound.find((e) => e.type === 'round' && e.status === 'started')!;
    assert.ok(started && started.round === 1 && ofRound.indexOf(started) < ofRound.indexOf(ended));
    for (const site of names) {
      const phases = ofRound.filter((e) => e.type === 'phase' && e.site === site);
      const order = phases.filter((e) => e.status === 'started').map((e) => e.phase);
      assert.deepEqual(order, ['training', 'key_exchange', 'masked_input', 'unmask', 'evaluation'], `${site}: ${JSON.stringify(phases)}`);
      for (const phase of order) {
        const done = phases.find((e) => e.phase === phase && e.status === 'done');
        assert.ok(done, `${site} ${phase} done: ${JSON.stringify(phases)}`);
        assert.ok(typeof done.seconds === 'number' && done.seconds >= 0);
        assert.ok(typeof done.bytes === 'number' && done.bytes >= 0);
        assert.ok(phases.indexOf(done) > phases.findIndex((e) => e.phase === phase && e.status === 'started'));
      }
      // The masked update went to the coordinator during training: its bytes show there.
      assert.ok((phases.find((e) => e.phase === 'training' && e.status === 'done')!.bytes as number) > 1000);
      assert.ok(!phases.some((e) => e.status === 'failed' || e.status === 'dropped'), JSON.stringify(phases));
    }
    const version = ofRound.find((e) => e.type === 'version');
    const rounds = (await call<{ versionId: string }[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    assert.equal(version?.version, rounds[0].versionId);
    assert.ok(ofRound.some((e) => e.type === 'metrics' && e.round === 1));
    assert.ok(ofRound.every((e) => typeof e.at === 'number' && Math.abs(e.at - Date.now()) < 120_000));
    // Admin changes show too: a new token.
    const t2 = await call<{ id: string }>(coord, 'POST', '/v1/tokens', { role: 'deployer' });
    await feed.waitFor('the token event', (e) => e.type === 'token' && e.id === t2.body.id && e.change === 'created', 5000);
    // The new version went through the deployment gate (deploy: "gated", the default).
    await feed.waitFor('the gate\'s decision', (e) => e.type === 'deployment' && (e.change === 'gate' || e.change === 'held') && e.version === version?.version, 10_000);
    // A revoked site: its change, then its session closing.
    assert.equal((await call(coord, 'POST', '/v1/sites/site-c/revoke')).status, 200);
    await feed.waitFor('site-c revoked', (e) => e.type === 'site' && e.site === 'site-c' && e.change === 'revoked', 5000);
    await feed.waitFor('site-c offline', (e) => e.type === 'site' && e.site === 'site-c' && e.online === false && e.change === undefined, 10_000);
  });

  it('at most 32 streams (503 beyond); a stream ends when its token is revoked', async () => {
    const created = await call<{ id: string; token: string }>(coord, 'POST', '/v1/tokens', { role: 'deployer' });
    const victim = await open(created.body.token);
    assert.equal(victim.status, 200);
    await victim.waitFor('hello', (e) => e.type === 'hello' && e.role === 'deployer');
    const openNow = streams.filter((s) => s.status === 200 && !s.isEnded()).length;
    const more = await Promise.all(Array.from({ length: 32 - openNow }, () => open(readerToken)));
    assert.ok(more.every((s) => s.status === 200));
    const refused = await fetch(new URL('/v1/events', coord.url), { headers: { authorization: `Bearer ${readerToken}` } });
    assert.equal(refused.status, 503);
    assert.equal(((await refused.json()) as { error: string }).error, 'too_many_subscribers');
    for (const s of more) s.close();
    // Closed streams free their places.
    await waitFor('a place in the feed', async () => {
      const s = await open(readerToken);
      s.close();
      return s.status === 200;
    }, 10_000, 100);
    assert.equal((await call(coord, 'DELETE', `/v1/tokens/${created.body.id}`)).status, 200);
    await Promise.race([victim.ended, new Promise((_, reject) => setTimeout(() => reject(new Error('the revoked token\'s stream did not end')), 5000))]);
    assert.ok(!victim.events.some((e) => e.type === 'token' && e.change === 'revoked' && e.id === created.body.id), 'nothing is sent on a revoked token\'s stream');
  });
});
