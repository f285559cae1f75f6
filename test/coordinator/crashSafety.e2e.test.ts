/**
 * Crash safety of the coordinator (issue 19, item 2): a real coordinator process with two real
 * edges, killed with SIGKILL at 20 seeded random points — during fit collection, right after
 * the last update arrived (aggregation and persisting the version), and after a version was
 * published (deployment and OTA to the edges) — and restarted on the same data dir each time.
 * After every restart: the store opens; every version seen before the kill is there with
 * byte-identical parameters; every version has its blob and every round's version is a known
 * version; the run goes on by itself — the round the kill interrupted says it was aborted by the
 * restart and a later round redid it, and the run's 2 rounds complete; nothing is left running;
 * the audit log verifies; and a last round runs after the 20th restart.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { call, createExperiment, enrol, freePort, spawnCli, startCoordinator, stopProc, waitFor, onlineSites, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { seeded, writeCsv } from '../helpers/edgeCrash.js';
import { runCli } from '../helpers/runCli.js';

const TRIALS = 20;
const KILL_POINTS = ['fit', 'aggregate', 'published'] as const;
type KillPoint = (typeof KILL_POINTS)[number];

interface RoundView {
  round: number;
  status: string;
  reason: string | null;
  versionId: string | null;
  redoes?: number;
}



/** Follows the coordinator's event feed; resolves `until(event)` waits. */
function followEvents(c: CoordinatorProc): { next: (match: (e: Record<string, unknown>) => boolean, timeoutMs?: number) => Promise<Record<string, unknown>>; close: () => void } {
  const ac = new AbortController();
  const waiting: { match: (e: Record<string, unknown>) => boolean; resolve: (e: Record<string, unknown>) => void }[] = [];
  void (async () => {
    const res = await fetch(`${c.url}/v1/events`, { headers: { authorization: `Bearer ${c.adminToken}` }, signal: ac.signal });
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block.split('\n').find((l) => l.startsWith('data: '));
        if (!data) continue;
        const e = JSON.parse(data.slice(6)) as Record<string, unknown>;
        for (const w of [...waiting]) {
          if (!w.match(e)) continue;
          waiting.splice(waiting.indexOf(w), 1);
          w.resolve(e);
        }
      }
    }
  })().catch(() => {});
  return {
    next: (match, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('timed out waiting for an event')), timeoutMs);
        waiting.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      }),
    close: () => ac.abort(),
  };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function paramsBytes(c: CoordinatorProc, version: string): Promise<{ status: number; bytes: Uint8Array }> {
  const res = await fetch(`${c.url}/v1/versions/${version}/params`, { headers: { authorization: `Bearer ${c.adminToken}` } });
  return { status: res.status, bytes: new Uint8Array(await res.arrayBuffer()) };
}

describe('crash safety: the coordinator SIGKILLed at 20 random points mid-round, restarted each time (real processes)', function () {
  this.timeout(600_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  let port: number;
  let coord: CoordinatorProc;
  const edges: Proc[] = [];
  let experiment: string;

  before(async () => {
    port = await freePort();
    coord = await startCoordinator(dataDir, port);
    for (const [i, site] of ['site-a', 'site-b'].entries()) {
      const data = join(t.dir, `${site}.csv`);
      writeCsv(data, i + 1);
      const stateDir = join(t.dir, site);
      await enrol(coord, site, stateDir);
      edges.push(spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', data, '--serve-port', String(await freePort()), '--serve-no-auth']));
    }
    await waitFor('2 edges online', async () => (await onlineSites(coord)).length === 2);
    experiment = await createExperiment(coord, { name: 'crash', model: { zoo: 'logreg', numFeatures: 8, numClasses: 2 }, deploy: 'auto', fit: { epochs: 20, batchSize: 8, learningRate: 0.05, optimizer: 'sgd' } });
  });
  after(async () => {
    for (const p of edges) await stopProc(p);
    if (coord) await stopProc(coord, 'SIGKILL');
    t.cleanup();
  });

  it('after every kill the store is whole, the interrupted round is aborted with the reason, and rounds go on', async () => {
    const rand = seeded(19);
    const hashes = new Map<string, string>(); // version → sha256 of its parameters, as served before a kill
    const covered: Record<KillPoint, number> = { fit: 0, aggregate: 0, published: 0 };
    const interrupted: string[] = [];
    for (let trial = 0; trial < TRIALS; trial++) {
      const point = KILL_POINTS[trial % KILL_POINTS.length];
      const events = followEvents(coord);
      await waitFor('2 edges online', async () => (await onlineSites(coord)).length === 2, 60_000, 50);
      // Everything published so far, with the bytes it is served as.
      for (const v of (await call<{ id: string }[]>(coord, 'GET', `/v1/experiments/${experiment}/versions`)).body) {
        if (hashes.has(v.id)) continue;
        const p = await paramsBytes(coord, v.id);
        assert.equal(p.status, 200);
        hashes.set(v.id, sha256(p.bytes));
      }
      const started = await call<{ firstRound: number }>(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 2 });
      assert.equal(started.status, 200, JSON.stringify(started.body));
      const round = started.body.firstRound;
      // The kill: after the point's event, plus a seeded delay.
      const isRound = (e: Record<string, unknown>) => e.experiment === experiment && e.round === round;
      try {
        await killPoint();
      } catch (err) {
        const rounds = (await call<RoundView[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds?last=3`)).body;
        throw new Error(`trial ${trial} (${point}, round ${round}): ${(err as Error).message}; rounds: ${JSON.stringify(rounds.map((r) => [r.round, r.status, r.reason]))}\n${coord.output().slice(-3000)}`);
      }
      async function killPoint(): Promise<void> {
      if (point === 'fit') await events.next((e) => isRound(e) && e.type === 'phase' && e.phase === 'training' && e.status === 'started');
      else if (point === 'aggregate') {
        await events.next((e) => isRound(e) && e.type === 'phase' && e.phase === 'training' && e.status === 'started');
        let done = 0;
        await events.next((e) => isRound(e) && e.type === 'phase' && e.phase === 'training' && e.status === 'done' && ++done === 2);
      } else await events.next((e) => isRound(e) && e.type === 'version');
      }
      const delayMs = Math.floor(rand() * (point === 'fit' ? 50 : point === 'aggregate' ? 20 : 200));
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      coord.child.kill('SIGKILL');
      await coord.exited;
      events.close();
      covered[point]++;

      coord = await startCoordinator(dataDir, port);
      // Every version served before the kill is there, byte-identical.
      for (const [v, h] of hashes) {
        const p = await paramsBytes(coord, v);
        assert.equal(p.status, 200, `trial ${trial}: version ${v} lost`);
        assert.equal(sha256(p.bytes), h, `trial ${trial}: version ${v} changed`);
      }
      // The run goes on by itself once the edges are back: the cut round is redone, then the rest.
      await waitFor('the resumed run to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 60_000, 100);
      // Every version has its blob; every round's version and the experiment's current version are versions.
      const versions = new Set((await call<{ id: string }[]>(coord, 'GET', `/v1/experiments/${experiment}/versions`)).body.map((v) => v.id));
      for (const v of versions) assert.ok(existsSync(join(dataDir, 'blobs', `${v}.fmp`)), `trial ${trial}: version ${v} without its blob`);
      const rounds = (await call<RoundView[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
      for (const r of rounds) if (r.versionId) assert.ok(versions.has(r.versionId), `trial ${trial}: round ${r.round} names a missing version`);
      const exp = (await call<{ currentVersion: string }>(coord, 'GET', `/v1/experiments/${experiment}`)).body;
      assert.ok(versions.has(exp.currentVersion), `trial ${trial}: the current version is missing`);
      // Nothing left running; the round the kill cut short says why, and a completed round redid it.
      assert.deepEqual(rounds.filter((r) => r.status === 'running'), [], `trial ${trial}`);
      const run = rounds.filter((r) => r.round >= round);
      for (const r of run.filter((x) => x.status !== 'completed')) {
        assert.equal(r.status, 'aborted', `trial ${trial}: round ${r.round} ${r.status}: ${r.reason}`);
        assert.match(r.reason ?? '', /coordinator restarted during the round/);
        assert.equal(run.find((x) => x.redoes === r.round)?.status, 'completed', `trial ${trial}: round ${r.round} was not redone`);
        interrupted.push(`${point}:${r.round}`);
      }
      assert.equal(run.filter((r) => r.status === 'completed').length, 2, `trial ${trial}: the run of 2 rounds completed despite the kill: ${JSON.stringify(run)}`);
      const audit = await runCli(['audit', 'verify', '--data-dir', dataDir]);
      assert.equal(audit.code, 0, `trial ${trial}: audit log: ${audit.stdout}${audit.stderr}`);
    }
    // And a last round runs to completion after the 20th restart.
    await waitFor('2 edges online', async () => (await onlineSites(coord)).length === 2, 60_000, 50);
    const last = await call<{ firstRound: number }>(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    await waitFor('the last round', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 60_000, 100);
    const rounds = (await call<RoundView[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    assert.equal(rounds.find((r) => r.round === last.body.firstRound)?.status, 'completed');
    // A kill during fit (training takes longer than its delay) always cuts its round short; later kills may land between rounds.
    assert.ok(interrupted.filter((x) => x.startsWith('fit:')).length >= covered.fit, `rounds interrupted: ${interrupted.join(', ')}`);
    assert.deepEqual(covered, { fit: 7, aggregate: 7, published: 6 });
  });
});
