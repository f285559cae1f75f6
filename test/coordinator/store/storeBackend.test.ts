/**
 * The store contract (storeBackend.ts), run against both backends: the embedded SQLite store in
 * a temp dir and PostgreSQL on a throwaway server (test/helpers/postgresServer.ts; skipped
 * outside CI when PostgreSQL is not installed, required in CI). Each test gets a fresh store.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import pg from 'pg';
import type { StoreBackend } from '../../../coordinator/store/storeBackend.js';
import { SQLITE_FILE, SqliteBackend } from '../../../coordinator/store/sqliteBackend.js';
import { PostgresBackend } from '../../../coordinator/store/postgresBackend.js';
import { loadNodeSqlite } from '../../../shared/storage/nodeSqlite.js';
import { emptyDocument, type DeploymentAction, type RoundRecord, type StoreDocument, type VersionRecord } from '../../../coordinator/store/storeSchema.js';
import { StoreFormatError } from '../../../shared/errors.js';
import { makeTempDir } from '../../helpers/paths.js';
import { startPostgresOrSkip, type PostgresServer } from '../../helpers/postgresServer.js';

/** How a suite makes, opens and pokes at one backend's stores (a location: a dir or a URL). */
interface Backend {
  name: string;
  setup(): Promise<boolean>;
  teardown(): Promise<void>;
  fresh(): Promise<string>;
  open(location: string): Promise<StoreBackend>;
  /** Runs SQL on the store's database directly (for the schema tests). */
  sql(location: string, text: string): Promise<Record<string, unknown>[]>;
}

function sqliteBackend(): Backend {
  const dirs: (() => void)[] = [];
  return {
    name: 'SqliteBackend',
    setup: async () => true,
    teardown: async () => dirs.forEach((cleanup) => cleanup()),
    fresh: async () => {
      const { dir, cleanup } = makeTempDir();
      dirs.push(cleanup);
      return dir;
    },
    open: (dir) => SqliteBackend.open(dir),
    sql: async (dir, text) => {
      const { DatabaseSync } = await loadNodeSqlite();
      const db = new DatabaseSync(join(dir, SQLITE_FILE));
      try {
        return /^\s*select/i.test(text) ? (db.prepare(text).all() as Record<string, unknown>[]) : (db.exec(text), []);
      } finally {
        db.close();
      }
    },
  };
}

/** One PostgreSQL server for the file, started by the first suite that needs it. */
let postgres: Promise<PostgresServer | null> | null = null;
const postgresServer = (): Promise<PostgresServer | null> => (postgres ??= startPostgresOrSkip());

function postgresBackend(): Backend {
  let server: PostgresServer | null = null;
  return {
    name: 'PostgresBackend',
    setup: async () => (server = await postgresServer()) !== null,
    teardown: async () => {},
    fresh: () => server!.createSchema(),
    open: (url) => PostgresBackend.open(url),
    sql: async (url, text) => {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        return (await client.query(text)).rows as Record<string, unknown>[];
      } finally {
        await client.end();
      }
    },
  };
}

function round(experiment: string, n: number, over: Partial<RoundRecord> = {}): RoundRecord {
  return {
    experiment, round: n, status: 'completed', startedAt: `2026-01-01T00:00:${String(n % 60).padStart(2, '0')}Z`, endedAt: null, reason: null,
    sites: [{ site: 'h1', phase: 'fit', status: 'done', numExamples: 10 }], fitMetrics: null, evalMetrics: null, versionId: null, timings: { fit: n / 10 },
    bytesSent: 1000 * n, bytesReceived: 10 * n, ...over,
  };
}

function version(id: string, experiment: string, n: number, over: Partial<VersionRecord> = {}): VersionRecord {
  return { id, experiment, round: n, parent: null, specHash: 'spec', paramsSha256: id.padEnd(64, '0'), createdAt: '2026-01-01T00:00:00Z', ...over };
}

function action(n: number): DeploymentAction {
  return { at: `2026-01-01T00:${String(n % 60).padStart(2, '0')}:00Z`, action: n % 2 ? 'publish' : 'promote', version: `v${n}` };
}

function doc(over: Partial<StoreDocument> = {}): StoreDocument {
  return { ...emptyDocument(), ...over };
}

const charged = (c: boolean): RoundRecord['privacy'] => ({ mode: 'central', noiseMultiplier: 1, samplingRate: 1, clip: 1, delta: 1e-5, charged: c });
const numbers = (rs: RoundRecord[]): number[] => rs.map((r) => r.round);
const ids = (vs: { id: string }[]): string[] => vs.map((v) => v.id);

describe('coordinator/store backends', () => {
  after(async () => (await postgres?.catch(() => null))?.stop());

  for (const backend of [sqliteBackend(), postgresBackend()]) {
    describe(`coordinator/store contract: ${backend.name}`, function () {
      let location: string;
      let store: StoreBackend | null = null;
      const open = async (): Promise<StoreBackend> => (store = await backend.open(location));
      const reopen = async (): Promise<StoreBackend> => {
        await store?.close();
        return open();
      };

      before(async function () {
        this.timeout(60_000);
        if (!(await backend.setup())) this.skip();
      });
      after(async () => backend.teardown());
      beforeEach(async () => {
        location = await backend.fresh();
        await open();
      });
      afterEach(async () => {
        await store?.close();
        store = null;
      });

      it('a new store is empty', async () => {
        const s = store!;
        assert.equal(await s.readDocument(), null);
        assert.deepEqual(await s.rounds('e'), []);
        assert.equal(await s.round('e', 1), null);
        assert.equal(await s.roundOfVersion('abc'), null);
        assert.deepEqual(await s.runningRounds(), []);
        assert.equal(await s.lastRoundNumber('e'), 0);
        assert.deepEqual(await s.chargedRounds('e'), []);
        assert.equal(await s.version('abc'), null);
        assert.deepEqual(await s.versionsWithPrefix('a', 10), []);
        assert.deepEqual(await s.versions('e'), []);
        assert.deepEqual(await s.deploymentActions(10), { actions: [], total: 0 });
      });

      it('round-trips the document exactly (key order, odd strings and numbers)', async () => {
        const d = doc({
          sites: [{ name: 'h\u00e9pital-\u{1F3E5}', tokenSha256: 'x', tokenUsedAt: null, publicKey: null, createdAt: 'now', enrolledAt: null, revokedAt: null, lastSeen: 'nul:\u0000 lone:\ud800 quote:" backslash:\\', roundsJoined: 2 ** 53 - 1 }],
          siteOffers: [{ site: 'h', versions: [] }],
        });
        (d as unknown as Record<string, unknown>).zFirst = { b: 1e-300, a: -1.5e300, '': [null, true, 0.1] };
        await store!.commit(d, {});
        const back = await store!.readDocument();
        assert.equal(JSON.stringify(back), JSON.stringify(d));
        const d2 = doc({ experiments: [] });
        await store!.commit(d2, {});
        assert.deepEqual(await store!.readDocument(), d2);
        await store!.commit(null, { rounds: [round('e', 1)] }); // history only: the document stays
        assert.deepEqual(await store!.readDocument(), d2);
      });

      it('a commit that fails leaves neither the document nor any row changed', async () => {
        const s = store!;
        const d1 = doc({ experiments: [] });
        await s.commit(d1, { rounds: [round('e', 1)], versions: [version('aa', 'e', 1)], deploymentActions: [action(1)] });
        // JSON.stringify refuses a BigInt: nothing reaches the database.
        const unserialisable = { ...round('e', 2), timings: { n: 1n } } as unknown as RoundRecord;
        await assert.rejects(s.commit(doc({ apiTokens: [], sites: [] }), { rounds: [round('e', 1, { status: 'failed' }), unserialisable], deploymentActions: [action(2)] }), TypeError);
        // A row the database refuses (NOT NULL) after the document and other rows were written.
        const refused = { ...round('e', 3), experiment: null } as unknown as RoundRecord;
        const d2 = doc({ experiments: [], deployment: { current: 'bb', canary: null, previous: [] } });
        await assert.rejects(s.commit(d2, { rounds: [round('e', 1, { status: 'aborted' }), refused], versions: [version('aa', 'e', 1, { parent: 'changed' }), version('bb', 'e', 2)], deploymentActions: [action(3), action(4)] }));
        for (const reopened of [false, true]) {
          const view = reopened ? await reopen() : s;
          assert.deepEqual(await view.readDocument(), d1);
          assert.deepEqual(await view.rounds('e'), [round('e', 1)]);
          assert.deepEqual(await view.version('aa'), version('aa', 'e', 1));
          assert.equal(await view.version('bb'), null);
          assert.deepEqual(await view.deploymentActions(10), { actions: [action(1)], total: 1 });
        }
        // The store still works, and the count of actions has no gap from the refused ones.
        await store!.commit(d2, { deploymentActions: [action(5)] });
        assert.deepEqual(await store!.deploymentActions(10), { actions: [action(1), action(5)], total: 2 });
        assert.deepEqual(await store!.readDocument(), d2);
      });

      it('upserts rounds by (experiment, round) and versions by id', async () => {
        const s = store!;
        await s.commit(null, { rounds: [round('e', 1, { status: 'running' }), round('f', 1, { status: 'running' })], versions: [version('aa', 'e', 1), version('ab', 'e', 2)] });
        await s.commit(null, { rounds: [round('e', 1, { status: 'completed', versionId: 'ab' })], versions: [version('aa', 'e', 1, { signed: { manifest: 'm' } as unknown as VersionRecord['signed'] })] });
        assert.deepEqual(await s.rounds('e'), [round('e', 1, { status: 'completed', versionId: 'ab' })]);
        assert.deepEqual(await s.round('f', 1), round('f', 1, { status: 'running' }));
        assert.deepEqual(numbers(await s.runningRounds()), [1]);
        assert.equal((await s.runningRounds())[0].experiment, 'f');
        assert.deepEqual(await s.roundOfVersion('ab'), round('e', 1, { status: 'completed', versionId: 'ab' }));
        // The updated version keeps its place (oldest first by first write).
        assert.deepEqual(ids(await s.versions('e')), ['aa', 'ab']);
        assert.deepEqual((await s.version('aa'))!.signed, { manifest: 'm' });
        // The same key twice in one commit: the last one wins.
        await s.commit(null, { rounds: [round('g', 1, { reason: 'first' }), round('g', 1, { reason: 'second' })], versions: [version('ac', 'g', 1, { parent: 'x' }), version('ac', 'g', 1, { parent: 'y' })] });
        assert.equal((await s.round('g', 1))!.reason, 'second');
        assert.equal((await s.version('ac'))!.parent, 'y');
      });

      it('rounds(exp, {limit, before}): oldest first, the latest `limit` below `before`', async () => {
        const s = store!;
        const order = [5, 2, 9, 1, 10, 3, 7, 4, 8, 6];
        await s.commit(null, { rounds: order.map((n) => round('e', n)) });
        await s.commit(null, { rounds: [round('other', 11), round('other', 0), round('e2', 100)] });
        assert.deepEqual(numbers(await s.rounds('e')), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert.deepEqual(numbers(await s.rounds('e', { limit: 3 })), [8, 9, 10]);
        assert.deepEqual(numbers(await s.rounds('e', { before: 5 })), [1, 2, 3, 4]);
        assert.deepEqual(numbers(await s.rounds('e', { limit: 2, before: 5 })), [3, 4]);
        assert.deepEqual(numbers(await s.rounds('e', { limit: 100, before: 3 })), [1, 2]);
        assert.deepEqual(numbers(await s.rounds('e', { before: 1 })), []);
        assert.deepEqual(numbers(await s.rounds('e', { limit: 0 })), []);
        assert.deepEqual(numbers(await s.rounds('e', { before: 1000 })).length, 10);
        assert.deepEqual(await s.rounds('nope', { limit: 5 }), []);
        assert.deepEqual(await s.round('e', 7), round('e', 7));
        assert.equal(await s.round('e', 11), null);
        assert.equal(await s.round('other', 5), null);
      });

      it('roundOfVersion, runningRounds and lastRoundNumber', async () => {
        const s = store!;
        await s.commit(null, {
          rounds: [
            round('e', 1, { versionId: 'v1' }), round('e', 2, { versionId: 'v2' }), round('e', 3, { status: 'running' }),
            round('f', 7, { status: 'running' }), round('f', 2, { status: 'failed', reason: 'no quorum' }),
          ],
        });
        assert.equal((await s.roundOfVersion('v2'))!.round, 2);
        assert.equal(await s.roundOfVersion('v3'), null);
        const running = (await s.runningRounds()).map((r) => `${r.experiment}#${r.round}`).sort();
        assert.deepEqual(running, ['e#3', 'f#7']);
        assert.equal(await s.lastRoundNumber('e'), 3);
        assert.equal(await s.lastRoundNumber('f'), 7);
        assert.equal(await s.lastRoundNumber('g'), 0);
        await s.commit(null, { rounds: [round('e', 3, { status: 'aborted' }), round('f', 7, { status: 'completed', versionId: 'v7' })] });
        assert.deepEqual(await s.runningRounds(), []);
        assert.equal((await s.roundOfVersion('v7'))!.experiment, 'f');
      });

      it('chargedRounds: the charged rounds of one experiment, oldest first', async () => {
        const s = store!;
        await s.commit(null, {
          rounds: [round('e', 4, { privacy: charged(true) }), round('e', 1, { privacy: charged(true) }), round('e', 2, { privacy: charged(false) }), round('e', 3), round('f', 1, { privacy: charged(true) })],
        });
        assert.deepEqual(numbers(await s.chargedRounds('e')), [1, 4]);
        assert.deepEqual(numbers(await s.chargedRounds('f')), [1]);
        await s.commit(null, { rounds: [round('e', 4, { privacy: charged(false) }), round('e', 2, { privacy: charged(true) })] });
        assert.deepEqual(numbers(await s.chargedRounds('e')), [1, 2]);
        assert.deepEqual((await s.chargedRounds('e'))[1].privacy, charged(true));
      });

      it('versionsWithPrefix and versions(exp, {limit})', async () => {
        const s = store!;
        const hex = ['ab12', '0f00', 'abff', 'ab', 'a0', 'abc3', 'b000', 'ffff', 'ab00'];
        await s.commit(null, { versions: hex.map((id, i) => version(id, i % 2 ? 'f' : 'e', i)) });
        assert.deepEqual(ids(await s.versionsWithPrefix('ab', 10)), ['ab', 'ab00', 'ab12', 'abc3', 'abff']);
        assert.deepEqual(ids(await s.versionsWithPrefix('ab', 2)), ['ab', 'ab00']);
        assert.deepEqual(ids(await s.versionsWithPrefix('abc', 10)), ['abc3']);
        assert.deepEqual(ids(await s.versionsWithPrefix('f', 10)), ['ffff']);
        assert.deepEqual(ids(await s.versionsWithPrefix('1', 10)), []);
        assert.deepEqual(ids(await s.versionsWithPrefix('', 3)), ['0f00', 'a0', 'ab']);
        assert.deepEqual(await s.versionsWithPrefix('zz\u0000%_', 3), []);
        assert.deepEqual(ids(await s.versions('e')), ['ab12', 'abff', 'a0', 'b000', 'ab00']);
        assert.deepEqual(ids(await s.versions('f')), ['0f00', 'ab', 'abc3', 'ffff']);
        assert.deepEqual(ids(await s.versions('e', { limit: 2 })), ['b000', 'ab00']);
        assert.deepEqual(ids(await s.versions('e', { limit: 0 })), []);
        assert.deepEqual(ids(await s.versions('e', { limit: 50 })).length, 5);
        assert.deepEqual(await s.versions('g'), []);
        assert.deepEqual(await s.version('abc3'), version('abc3', 'f', 5));
      });

      it('deploymentActions(limit): the latest, oldest first, with the total', async () => {
        const s = store!;
        await s.commit(null, { deploymentActions: [action(1), action(2), action(3)] });
        await s.commit(null, { deploymentActions: [action(4)] });
        await s.commit(null, { deploymentActions: [action(5), action(6)] });
        assert.deepEqual(await s.deploymentActions(2), { actions: [action(5), action(6)], total: 6 });
        assert.deepEqual(await s.deploymentActions(100), { actions: [1, 2, 3, 4, 5, 6].map(action), total: 6 });
        assert.deepEqual(await s.deploymentActions(0), { actions: [], total: 6 });
      });

      it('concurrent commits all land', async () => {
        const s = store!;
        await Promise.all(Array.from({ length: 24 }, (_, i) => s.commit(null, { rounds: [round('e', i + 1)], versions: [version(`c${i.toString(16).padStart(2, '0')}`, 'e', i + 1)], deploymentActions: [action(i)] })));
        assert.deepEqual(numbers(await s.rounds('e')), Array.from({ length: 24 }, (_, i) => i + 1));
        assert.equal((await s.versions('e')).length, 24);
        assert.equal((await s.deploymentActions(1)).total, 24);
      });

      it('keeps everything across close and reopen', async () => {
        const d = doc({ experiments: [], deployment: { current: 'ab', canary: null, previous: ['aa'] } });
        await store!.commit(d, { rounds: [round('e', 1, { versionId: 'ab', privacy: charged(true) }), round('e', 2, { status: 'running' })], versions: [version('aa', 'e', 0), version('ab', 'e', 1)], deploymentActions: [action(1), action(2)] });
        const s = await reopen();
        assert.deepEqual(await s.readDocument(), d);
        assert.deepEqual(numbers(await s.rounds('e')), [1, 2]);
        assert.equal((await s.roundOfVersion('ab'))!.round, 1);
        assert.deepEqual(numbers(await s.runningRounds()), [2]);
        assert.deepEqual(numbers(await s.chargedRounds('e')), [1]);
        assert.equal(await s.lastRoundNumber('e'), 2);
        assert.deepEqual(ids(await s.versions('e')), ['aa', 'ab']);
        assert.deepEqual(await s.deploymentActions(5), { actions: [action(1), action(2)], total: 2 });
        // and goes on numbering after the reopen
        await s.commit(null, { versions: [version('ac', 'e', 2)], deploymentActions: [action(3)] });
        assert.deepEqual(ids(await s.versions('e', { limit: 2 })), ['ab', 'ac']);
        assert.equal((await s.deploymentActions(1)).total, 3);
      });

      it('migrates once: reopening applies nothing again', async () => {
        await store!.commit(doc(), { rounds: [round('e', 1)] });
        const before = await backend.sql(location, 'SELECT version, applied_at FROM schema_migrations ORDER BY version');
        assert.ok(before.length >= 1);
        assert.deepEqual(before.map((r) => Number(r.version)), before.map((_, i) => i + 1));
        await reopen();
        await reopen();
        const after = await backend.sql(location, 'SELECT version, applied_at FROM schema_migrations ORDER BY version');
        assert.deepEqual(after.map((r) => [Number(r.version), String(r.applied_at)]), before.map((r) => [Number(r.version), String(r.applied_at)]));
        assert.deepEqual(numbers(await store!.rounds('e')), [1]);
      });

      it('refuses a database whose schema is newer than this fedmed knows', async () => {
        await store!.close();
        store = null;
        const [{ v }] = await backend.sql(location, 'SELECT MAX(version) AS v FROM schema_migrations');
        await backend.sql(location, `INSERT INTO schema_migrations (version, applied_at) VALUES (${Number(v) + 1}, '2030-01-01T00:00:00Z')`);
        await assert.rejects(backend.open(location), (err: unknown) => {
          assert.ok(err instanceof StoreFormatError, String(err));
          assert.match(err.message, new RegExp(`schema version ${Number(v) + 1}.*knows up to ${Number(v)}`));
          return true;
        });
      });
    });
  }

  describe('coordinator/store PostgresBackend (connections, URLs, concurrent start)', function () {
    let server: PostgresServer | null = null;
    before(async function () {
      this.timeout(60_000);
      if (!(server = await postgresServer())) this.skip();
    });

    it('describes itself by the URL without its password', async () => {
      const store = await PostgresBackend.open(server!.url);
      try {
        assert.equal(store.description.kind, 'postgres');
        assert.ok(!store.description.location.includes(server!.password), store.description.location);
        assert.match(store.description.location, new RegExp(`^postgres://fedmed@127\\.0\\.0\\.1:${server!.port}/fedmed_test$`));
      } finally {
        await store.close();
        await store.close(); // twice is harmless
      }
    });

    it('a failed connection is a StoreFormatError naming host and database, never the password', async () => {
      const wrong = server!.url.replace(`:${server!.password}@`, ':not-the-password@');
      await assert.rejects(PostgresBackend.open(wrong), (err: unknown) => {
        assert.ok(err instanceof StoreFormatError, String(err));
        assert.match(err.message, /127\.0\.0\.1.*fedmed_test/);
        assert.match(err.message, /password authentication failed/);
        assert.ok(!err.message.includes('not-the-password'), err.message);
        return true;
      });
      // Nothing listens on the port of a closed server: refused, quickly.
      const closed = await (async () => {
        const net = await import('node:net');
        return new Promise<number>((resolve) => {
          const srv = net.createServer().listen(0, '127.0.0.1', () => {
            const port = (srv.address() as { port: number }).port;
            srv.close(() => resolve(port));
          });
        });
      })();
      const secret = 'Sup3r-secret';
      await assert.rejects(PostgresBackend.open(`postgres://fedmed:${secret}@127.0.0.1:${closed}/somedb`), (err: unknown) => {
        assert.ok(err instanceof StoreFormatError, String(err));
        assert.match(err.message, new RegExp(`127\\.0\\.0\\.1 port ${closed}, database somedb`));
        assert.ok(!err.message.includes(secret), err.message);
        return true;
      });
      await assert.rejects(PostgresBackend.open('not a url :secret@'), (err: unknown) => err instanceof StoreFormatError && !err.message.includes('secret'));
      await assert.rejects(PostgresBackend.open('mysql://u:secret@h/db'), (err: unknown) => err instanceof StoreFormatError && !err.message.includes('secret'));
    });

    it('coordinators opening a new database at once migrate it once', async () => {
      const url = await server!.createSchema();
      const stores = await Promise.all(Array.from({ length: 4 }, () => PostgresBackend.open(url)));
      try {
        const rows = await stores[0].dedicatedClient().then(async (c) => {
          try {
            return (await c.query('SELECT version FROM schema_migrations ORDER BY version')).rows;
          } finally {
            await c.end();
          }
        });
        assert.deepEqual(rows.map((r) => Number(r.version)), rows.map((_, i) => i + 1));
        await stores[1].commit(doc(), { rounds: [round('e', 1)] });
        assert.deepEqual(numbers(await stores[3].rounds('e')), [1]);
      } finally {
        await Promise.all(stores.map((s) => s.close()));
      }
    });

    it('outlives connections the server drops, and commits durably on a server set to synchronous_commit=off', async () => {
      const url = await server!.createSchema();
      const store = await PostgresBackend.open(`${url}${encodeURIComponent(' -c synchronous_commit=off')}`);
      try {
        assert.equal((store as unknown as { forceSynchronousCommit: boolean }).forceSynchronousCommit, true);
        await store.commit(doc(), { rounds: [round('e', 1)] });
        await Promise.all([store.round('e', 1), store.rounds('e'), store.version('x')]); // several pooled connections
        const admin = await store.dedicatedClient();
        try {
          const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'fedmed-coordinator' AND pid <> pg_backend_pid()`);
          assert.ok(killed.rowCount! >= 1);
        } finally {
          await admin.end();
        }
        await new Promise((r) => setTimeout(r, 200));
        await store.commit(null, { rounds: [round('e', 2)] });
        assert.deepEqual(numbers(await store.rounds('e')), [1, 2]);
      } finally {
        await store.close();
      }
    });

    it('a key PostgreSQL cannot store (U+0000) is refused, reads of one find nothing', async () => {
      const store = await PostgresBackend.open(await server!.createSchema());
      try {
        await assert.rejects(store.commit(doc(), { rounds: [round('e\u0000', 1)] }), StoreFormatError);
        assert.equal(await store.readDocument(), null);
        assert.equal(await store.round('e\u0000', 1), null);
        assert.deepEqual(await store.rounds('e\u0000'), []);
        assert.equal(await store.version('a\u0000'), null);
      } finally {
        await store.close();
      }
    });
  });
});
