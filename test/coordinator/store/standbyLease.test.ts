/**
 * The standby lease (coordinator/store/standbyLease.ts) on a throwaway PostgreSQL server
 * (skipped outside CI without one): one holder at a time, a waiting standby takes it when the
 * holder releases it or its session ends, a lost lease is noticed, and the store's commits are
 * fenced with it (a commit after the lease's session ended is rolled back).
 */
import assert from 'node:assert/strict';
import pg from 'pg';
import { LeaseLostError, PostgresBackend } from '../../../coordinator/store/postgresBackend.js';
import { StandbyLease, type LeaseHolder } from '../../../coordinator/store/standbyLease.js';
import { emptyDocument } from '../../../coordinator/store/storeSchema.js';
import { startPostgresOrSkip, type PostgresServer } from '../../helpers/postgresServer.js';

const fast = { pollMs: 50, pingMs: 100, pingTimeoutMs: 1000 };

async function sql(url: string, text: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as Record<string, unknown>[];
  } finally {
    await c.end();
  }
}

describe('standby lease (PostgreSQL advisory lock)', function () {
  this.timeout(60_000);
  let server: PostgresServer | null = null;
  let url: string;

  before(async function () {
    server = await startPostgresOrSkip();
    if (!server) return this.skip();
  });
  beforeEach(async function () {
    if (!server) return this.skip();
    url = await server.createDatabase();
  });
  after(async () => server?.stop());

  it('one holder at a time: a standby says who holds it, waits, and takes it once it is released', async () => {
    const first = await StandbyLease.acquire(url, { timings: fast });
    assert.equal(first.waitedMs, 0);
    let holder: LeaseHolder | null | undefined;
    const second = StandbyLease.acquire(url, { timings: fast, onStandby: (h) => (holder = h) });
    let taken = false;
    void second.then(() => (taken = true));
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(taken, false);
    assert.equal(holder?.pid, first.sessionPid);
    assert.match(holder?.application ?? '', /^fedmed-coordinator-lease /);
    await first.release();
    const lease = await second;
    assert.ok(lease.waitedMs >= 300, `waited ${lease.waitedMs} ms`);
    assert.equal(lease.lost, null);
    await lease.release();
  });

  it('a lease whose session is ended is lost at once, the standby takes over, and the old holder can no longer commit', async () => {
    const lease = await StandbyLease.acquire(url, { timings: fast });
    const store = await PostgresBackend.open(url);
    await store.commit(emptyDocument(), {});
    const lost = new Promise<string>((resolve) => lease.onLost(resolve));
    // (the other coordinator: a URL of its own, since the fence is kept per URL in this one process)
    const standby = StandbyLease.acquire(`${url}?sslmode=disable`, { timings: fast });
    await sql(url, 'SELECT pg_terminate_backend($1)', [lease.sessionPid]);
    const reason = await lost;
    assert.match(reason, /lease connection/);
    assert.notEqual(lease.lost, null);
    const next = await standby;
    assert.notEqual(next.sessionPid, lease.sessionPid);
    // The fence: this process's store refuses to write once another holds the lease.
    await assert.rejects(store.commit(emptyDocument(), {}), LeaseLostError);
    await store.close();
    await next.release();
  });

  it('a wrong URL is an error, not an endless wait', async () => {
    const bad = url.replace(/:[^:@/]+@/, ':wrong-password@');
    await assert.rejects(StandbyLease.acquire(bad, { timings: fast }), /cannot connect to PostgreSQL at host 127\.0\.0\.1/);
  });
});
