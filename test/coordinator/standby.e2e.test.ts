/**
 * Standby coordinator (issue 19, item 5), with real processes on a real PostgreSQL server
 * (test/helpers/postgresServer.ts; skipped outside CI without it): coordinators A, B and C on
 * one database and one data dir, on three ports, certified by the federation admin for all three
 * URLs; two real edges started with `--coordinator A,B`.
 *
 * A serves, B waits as standby (without touching the data dir lock). A round completes on A;
 * more are started and A is SIGKILLed mid-round: B takes over within 10 s, the interrupted round
 * is aborted with the reason, a round completes on B, the edges reconnect to B, and every version
 * published on A is served by B byte-identical. Then C waits as standby while B serves; B's lease
 * connection is killed in PostgreSQL (pg_terminate_backend): B stops at once (exit 75) and C
 * takes over; the edges fail over to C, a URL they learned from the coordinator's certificate.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { adminApi, adminKeyFor, call, createExperiment, enrol, freePort, onlineSites, spawnCli, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { startPostgresOrSkip, type PostgresServer } from '../helpers/postgresServer.js';
import { certifyCoordinator } from '../../cli/admin/federationAdmin.js';
import { ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE } from '../../coordinator/store/postgresBackend.js';

interface RoundView {
  round: number;
  status: string;
  reason: string | null;
  versionId: string | null;
}

/** A tabular site's data: 8 features, a label that depends on them (seeded). */
function writeCsv(path: string, seed: number): void {
  let a = seed >>> 0;
  const rand = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rows = ['f0,f1,f2,f3,f4,f5,f6,f7,label'];
  for (let i = 0; i < 200; i++) {
    const x = Array.from({ length: 8 }, () => rand() * 2 - 1);
    rows.push([...x.map((v) => v.toFixed(4)), x[0] + x[1] - x[2] > 0 ? 1 : 0].join(','));
  }
  writeFileSync(path, `${rows.join('\n')}\n`);
}

/** The JSON lines a process printed. */
function lines(p: Proc): Record<string, unknown>[] {
  return p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function paramsHash(c: { url: string; adminToken: string }, version: string): Promise<string> {
  const res = await fetch(`${c.url}/v1/versions/${version}/params`, { headers: { authorization: `Bearer ${c.adminToken}` } });
  assert.equal(res.status, 200, `version ${version} not served by ${c.url}`);
  return sha256(new Uint8Array(await res.arrayBuffer()));
}

describe('standby coordinator on PostgreSQL: takeover after SIGKILL and after a lost lease, edges fail over (real processes)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  let server: PostgresServer | null = null;
  let env: NodeJS.ProcessEnv;
  const ports: number[] = [];
  const urls: string[] = [];
  const procs: Proc[] = [];
  const edges: Proc[] = [];
  let a: CoordinatorProc;
  let b: CoordinatorProc;
  let experiment: string;
  /** Versions served before a takeover, with the hash of their parameters. */
  const hashes = new Map<string, string>();

  /** `fedmed coordinator start` on port `i`, on the shared database (its URL in the environment: no password in the process list). */
  const spawnCoordinator = (i: number): Proc => {
    const p = spawnCli(['coordinator', 'start', '--data-dir', dataDir, '--port', String(ports[i]), '--log-level', 'warn'], env);
    procs.push(p);
    return p;
  };
  const listening = (p: Proc): Record<string, unknown> | undefined => lines(p).find((l) => l.event === 'listening');
  const asCoordinator = (p: Proc): CoordinatorProc => ({ ...p, url: String(listening(p)!.url), adminToken: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(), admin: adminKeyFor(dataDir) });
  const waitListening = (what: string, p: Proc, timeoutMs: number): Promise<Record<string, unknown>> =>
    waitFor(what, () => {
      if (p.child.exitCode !== null) throw new Error(`${what}: exited ${p.child.exitCode}: ${p.output()}`);
      return listening(p);
    }, timeoutMs, 20);
  const waitStandby = (what: string, p: Proc): Promise<Record<string, unknown>> =>
    waitFor(what, () => {
      if (p.child.exitCode !== null) throw new Error(`${what}: exited ${p.child.exitCode}: ${p.output()}`);
      return lines(p).find((l) => l.event === 'standby');
    }, 30_000, 20);
  const rounds = async (c: CoordinatorProc): Promise<RoundView[]> => (await call<RoundView[]>(c, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
  const idle = (c: CoordinatorProc, what: string): Promise<boolean> => waitFor(what, async () => !(await call<{ running: boolean }>(c, 'GET', `/v1/experiments/${experiment}`)).body.running, 60_000, 100);
  const recordVersions = async (c: CoordinatorProc): Promise<void> => {
    for (const v of (await call<{ id: string }[]>(c, 'GET', `/v1/experiments/${experiment}/versions`)).body) if (!hashes.has(v.id)) hashes.set(v.id, await paramsHash(c, v.id));
  };
  const fitStarted = (round: number): boolean => edges.some((e) => lines(e).some((l) => l.event === 'fit_started' && l.experiment === experiment && l.round === round));

  before(async function () {
    server = await startPostgresOrSkip();
    if (!server) return this.skip();
    env = { FEDMED_DATABASE_URL: await server.createDatabase() };
    for (let i = 0; i < 3; i++) ports.push(await freePort());
    urls.push(...ports.map((p) => `http://127.0.0.1:${p}`));
  });
  after(async () => {
    for (const p of [...edges, ...procs]) await stopProc(p, 'SIGKILL');
    await server?.stop();
    t.cleanup();
  });

  it('B waits as standby; A SIGKILLed mid-round: B takes over within 10 s, aborts the round, runs rounds, edges reconnect, versions byte-identical', async () => {
    const pa = spawnCoordinator(0);
    await waitListening('A to listen', pa, 30_000);
    a = asCoordinator(pa);
    // The admin certifies the coordinator's key for the three URLs sites may reach it at.
    await certifyCoordinator(adminApi(a), a.admin, { urls });
    const pb = spawnCoordinator(1);
    const standby = await waitStandby('B to wait as standby', pb);
    assert.equal(typeof (standby.holder as { pid?: unknown } | null)?.pid, 'number', JSON.stringify(standby));
    for (const [i, site] of ['site-a', 'site-b'].entries()) {
      const data = join(t.dir, `${site}.csv`);
      writeCsv(data, i + 1);
      const stateDir = join(t.dir, site);
      await enrol(a, site, stateDir);
      const e = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', data, '--coordinator', `${urls[0]},${urls[1]}`]);
      edges.push(e);
    }
    await waitFor('2 edges online on A', async () => (await onlineSites(a)).length === 2, 60_000, 50);
    experiment = await createExperiment(a, { name: 'standby', model: { zoo: 'logreg', numFeatures: 8, numClasses: 2 }, deploy: 'auto', fit: { epochs: 40, batchSize: 8, learningRate: 0.05, optimizer: 'sgd' } });
    // A round completes on A.
    assert.equal((await call(a, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 })).status, 200);
    await idle(a, 'the first round on A');
    assert.equal((await rounds(a))[0]?.status, 'completed');
    await recordVersions(a);
    assert.ok(hashes.size >= 2, `versions on A: ${[...hashes.keys()].join(', ')}`);
    // B is standby: it has not touched the data dir lock, nor listened.
    assert.equal(readFileSync(join(dataDir, 'coordinator.lock'), 'utf8').split(' ')[0], String(pa.child.pid));
    assert.equal(listening(pb), undefined);

    // More rounds; A is killed while the edges train in the first of them.
    const started = await call<{ firstRound: number }>(a, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 3 });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const cut = started.body.firstRound;
    await waitFor(`the edges to train round ${cut}`, () => fitStarted(cut), 30_000, 10);
    pa.child.kill('SIGKILL');
    await pa.exited;
    const killedAt = Date.now();
    const line = await waitListening('B to take over', pb, 10_000);
    const takeoverMs = Date.now() - killedAt;
    console.log(`      (B listening ${takeoverMs} ms after A was SIGKILLed; it waited ${(line.lease as { waitedMs: number }).waitedMs} ms as standby)`);
    assert.ok(takeoverMs < 10_000, `takeover took ${takeoverMs} ms`);
    b = asCoordinator(pb);
    assert.equal(b.url, urls[1]);
    assert.equal(readFileSync(join(dataDir, 'coordinator.lock'), 'utf8').split(' ')[0], String(pb.child.pid));

    // The interrupted round says why; then a round completes on B (resumed by itself, or started here).
    const cutRound = (await rounds(b)).find((r) => r.round === cut);
    assert.equal(cutRound?.status, 'aborted', JSON.stringify(cutRound));
    assert.match(cutRound?.reason ?? '', /coordinator restarted during the round/);
    await waitFor('2 edges online on B', async () => (await onlineSites(b)).length === 2, 30_000, 50);
    await idle(b, 'the resumed rounds on B');
    if (!(await rounds(b)).some((r) => r.round > cut && r.status === 'completed')) {
      assert.equal((await call(b, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 })).status, 200);
      await idle(b, 'a round on B');
    }
    const after = await rounds(b);
    assert.ok(after.some((r) => r.round > cut && r.status === 'completed'), `rounds on B: ${JSON.stringify(after.map((r) => [r.round, r.status, r.reason]))}`);
    assert.deepEqual(after.filter((r) => r.status === 'running'), []);
    // Every version published on A is served by B, byte-identical.
    for (const [v, h] of hashes) assert.equal(await paramsHash(b, v), h, `version ${v} changed`);
    for (const e of edges) assert.ok(lines(e).some((l) => l.event === 'connected' && l.coordinator === urls[1]), `edge never connected to B: ${e.output().slice(-2000)}`);
    await recordVersions(b);
  });

  it('C stays standby while B is active; B stops at once when its lease connection is killed, and C takes over; edges fail over to C', async function () {
    if (!b) return this.skip();
    const pc = spawnCoordinator(2);
    const standby = await waitStandby('C to wait as standby', pc);
    const bLease = (listening(b)!.lease as { session: number }).session;
    assert.equal((standby.holder as { pid: number }).pid, bLease, JSON.stringify(standby));
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(listening(pc), undefined, 'C must stay standby while B holds the lease');
    assert.equal((await onlineSites(b)).length, 2);

    // The lease session, as PostgreSQL shows it, is B's; it is killed from outside.
    const admin = new pg.Client({ connectionString: env.FEDMED_DATABASE_URL });
    await admin.connect();
    try {
      const held = await admin.query(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2 AND granted`, [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE]);
      assert.deepEqual(held.rows.map((r: { pid: number }) => r.pid), [bLease]);
      await admin.query('SELECT pg_terminate_backend($1)', [bLease]);
    } finally {
      await admin.end();
    }
    const killedAt = Date.now();
    const code = await Promise.race([b.exited, new Promise<string>((r) => setTimeout(() => r('still running'), 5000))]);
    assert.equal(code, 75, `B after losing its lease: ${code}\n${b.output().slice(-2000)}`);
    assert.ok(lines(b).some((l) => l.event === 'lease_lost'), b.output().slice(-2000));
    await waitListening('C to take over', pc, 10_000);
    console.log(`      (C listening ${Date.now() - killedAt} ms after B's lease connection was killed)`);
    const c = asCoordinator(pc);
    // The edges were started with A and B only: C's URL came from the admin-signed certificate.
    await waitFor('2 edges online on C', async () => (await onlineSites(c)).length === 2, 30_000, 50);
    for (const e of edges) assert.ok(lines(e).some((l) => l.event === 'coordinator_url_learned' && l.url === urls[2]), e.output().slice(-2000));
    for (const [v, h] of hashes) assert.equal(await paramsHash(c, v), h, `version ${v} changed`);
    assert.deepEqual((await rounds(c)).filter((r) => r.status === 'running'), []);
    // The audit log the three wrote in turn verifies.
    const audit = await runCli(['audit', 'verify', '--data-dir', dataDir]);
    assert.equal(audit.code, 0, `audit log: ${audit.stdout}${audit.stderr}`);
  });
});
