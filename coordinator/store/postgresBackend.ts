/**
 * The store in PostgreSQL, for large deployments (`fedmed coordinator start --database
 * postgres://user:password@host:port/db`): the same tables as the embedded SQLite store
 * (sqliteBackend.ts) — the document as one row, rounds, versions and deployment actions as keyed,
 * indexed rows with JSON bodies — migrated by version number (schema_migrations) on open. Model
 * blobs stay content-addressed files in DATA_DIR (coordinatorStore.ts).
 *
 * Bodies are TEXT holding JSON.stringify's output, read back with JSON.parse: exactly what was
 * written (JSONB would reorder keys and refuses the \u0000 a string may carry).
 *
 * Durability: each commit is one transaction, acknowledged by the server once its WAL record is
 * flushed (synchronous_commit=on, PostgreSQL's default; a server configured with `off` is
 * overridden for our transactions, `local`, `remote_write` and `remote_apply` are left as set).
 *
 * Connections: a small pool (4) for reads and commits. Migrations take a transaction-scoped
 * advisory lock, so coordinators starting together migrate once. `dedicatedClient()` gives a
 * connection outside the pool, for session state such as a session-level advisory lock.
 *
 * Write fence: while a standby lease (standbyLease.ts) is held for this URL, every commit first
 * takes the write barrier (ADVISORY_LOCK_WRITES) shared and checks, in its transaction, that the
 * lease's session still holds the lease lock, and is rolled back (LeaseLostError) if not; the
 * next holder passes the barrier exclusively before it reads anything. So a coordinator that lost
 * its lease never writes after its successor started, even in the moment before it notices and exits.
 */
import pg from 'pg';
import type { RoundQuery, StoreBackend } from './storeBackend.js';
import type { DeploymentAction, HistoryWrites, RoundRecord, StoreDocument, VersionRecord } from './storeSchema.js';
import { FedmedError, StoreFormatError, errorMessage } from '../../shared/errors.js';

/** Schema migrations, applied in order in one transaction; the database records the last one it has. */
const MIGRATIONS: string[] = [
  `CREATE TABLE document (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
   CREATE TABLE rounds (experiment TEXT NOT NULL, round BIGINT NOT NULL, status TEXT NOT NULL, version_id TEXT, charged BOOLEAN NOT NULL, body TEXT NOT NULL, PRIMARY KEY (experiment, round));
   CREATE INDEX rounds_by_version ON rounds (version_id) WHERE version_id IS NOT NULL;
   CREATE INDEX rounds_running ON rounds (status) WHERE status = 'running';
   CREATE INDEX rounds_charged ON rounds (experiment, round) WHERE charged;
   CREATE TABLE versions (seq BIGSERIAL PRIMARY KEY, id TEXT COLLATE "C" NOT NULL UNIQUE, experiment TEXT NOT NULL, body TEXT NOT NULL);
   CREATE INDEX versions_by_experiment ON versions (experiment, seq);
   CREATE TABLE deployment_actions (seq BIGSERIAL PRIMARY KEY, body TEXT NOT NULL);
   CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL);
   INSERT INTO counters (name, value) VALUES ('deployment_actions', 0);`,
];

/**
 * Advisory lock keys (pg_advisory_lock(class, key)): this class is fedmed's ('fed0'); key 1 guards
 * migrations. Other keys are free for other uses (a standby's lease).
 */
export const ADVISORY_LOCK_CLASS = 0x66656430;
export const ADVISORY_LOCK_MIGRATIONS = 1;
/** Key of the active coordinator's lease (a session-level lock; standbyLease.ts). */
export const ADVISORY_LOCK_LEASE = 2;
/**
 * Key of the write barrier: a fenced commit holds it shared for its transaction; a coordinator
 * that has just taken the lease takes it exclusively once, so it waits out the commits the
 * previous holder had already begun (and checked) before it reads the store.
 */
export const ADVISORY_LOCK_WRITES = 3;

/** A commit refused because this process no longer holds the lease: another coordinator is (or may be) active. */
export class LeaseLostError extends FedmedError {
  constructor(message: string) {
    super('LEASE_LOST', message);
  }
}

/** The backend pid of the session holding this process's lease, by database URL (set by standbyLease.ts). */
const leaseSessions = new Map<string, number>();

/** Fences the commits of stores opened on `url` with the lease held by backend `pid` (null: no fence). */
export function fenceWritesWithLease(url: string, pid: number | null): void {
  if (pid === null) leaseSessions.delete(url);
  else leaseSessions.set(url, pid);
}

const POOL_SIZE = 4;
const CONNECT_TIMEOUT_MS = 10_000;

type Row = Record<string, unknown>;

export class PostgresBackend implements StoreBackend {
  readonly description: StoreBackend['description'];
  private closed = false;
  /** The server runs with synchronous_commit=off: turn it on for our transactions. */
  private forceSynchronousCommit = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly config: pg.ClientConfig,
    location: string,
    private readonly url: string,
  ) {
    this.description = { kind: 'postgres', location };
  }

  static async open(url: string): Promise<PostgresBackend> {
    const { location, password, target } = describeUrl(url);
    const config = clientConfig(url);
    const pool = new pg.Pool({ ...config, max: POOL_SIZE, idleTimeoutMillis: 30_000 });
    // An idle client whose connection drops (a server restart) is dropped from the pool; the
    // next query connects anew. Without a listener the error would end the process.
    pool.on('error', () => {});
    const backend = new PostgresBackend(pool, config, location, url);
    try {
      await backend.withClient(async (client) => {
        await backend.migrate(client);
        const sc = await client.query('SHOW synchronous_commit');
        backend.forceSynchronousCommit = String((sc.rows[0] as Row).synchronous_commit) === 'off';
      }, (err) => new StoreFormatError(`cannot connect to PostgreSQL at ${target}: ${scrub(errorMessage(err), password)}`));
    } catch (err) {
      await pool.end().catch(() => {});
      if (err instanceof StoreFormatError) throw err;
      throw new StoreFormatError(`PostgreSQL store at ${target}: ${scrub(errorMessage(err), password)}`);
    }
    return backend;
  }

  /**
   * One connection to `url` outside any pool (the caller ends it), with `extra` settings (keepalives,
   * application_name): for session state such as the standby lease. Connection errors name the
   * server without the password. Its 'error' events are caught (the caller listens for them too).
   */
  static async connectSession(url: string, extra: Partial<pg.ClientConfig> = {}): Promise<{ client: pg.Client; location: string }> {
    const { location, password, target } = describeUrl(url);
    const client = new pg.Client({ ...clientConfig(url), ...extra });
    client.on('error', () => {});
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => {});
      throw new StoreFormatError(`cannot connect to PostgreSQL at ${target}: ${scrub(errorMessage(err), password)}`);
    }
    return { client, location };
  }

  /**
   * Runs `body` on one pooled client. A client whose connection failed is discarded, not
   * returned to the pool; while checked out, its 'error' event is caught here (the pool only
   * listens on idle clients, and an unheard 'error' would end the process).
   */
  private async withClient<T>(body: (client: pg.PoolClient) => Promise<T>, connectError: (err: unknown) => Error = (err) => err as Error): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw connectError(err);
    }
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken ??= err;
    };
    client.on('error', onError);
    try {
      return await body(client);
    } catch (err) {
      if (isConnectionError(err) && !(err instanceof LeaseLostError)) broken ??= err as Error;
      throw err;
    } finally {
      client.removeListener('error', onError);
      client.release(broken);
    }
  }

  /** Applies the migrations this database lacks, in one transaction, under the migration lock. */
  private async migrate(client: pg.PoolClient): Promise<void> {
    await inTransaction(client, async () => {
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_MIGRATIONS]);
      await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)');
      const done = Number((await client.query('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations')).rows[0].v);
      if (done > MIGRATIONS.length) throw new StoreFormatError(`${this.description.location} has schema version ${done}; this fedmed knows up to ${MIGRATIONS.length} (a newer fedmed wrote it)`);
      for (let v = done + 1; v <= MIGRATIONS.length; v++) {
        await client.query(MIGRATIONS[v - 1]);
        await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())', [v]);
      }
    });
  }

  async readDocument(): Promise<StoreDocument | null> {
    return bodyOf<StoreDocument>(await this.query('SELECT body FROM document WHERE id = 1'), 'document');
  }

  async commit(document: StoreDocument | null, writes: HistoryWrites): Promise<void> {
    // Serialise first: a record that cannot be written fails before the transaction starts.
    const doc = document ? JSON.stringify(document) : null;
    const rounds = (writes.rounds ?? []).map((r) => [key(r.experiment), String(r.round), key(r.status), key(r.versionId ?? null), r.privacy?.charged === true, JSON.stringify(r)]);
    const versions = (writes.versions ?? []).map((v) => [key(v.id), key(v.experiment), JSON.stringify(v)]);
    const actions = (writes.deploymentActions ?? []).map((a) => JSON.stringify(a));
    if (doc === null && !rounds.length && !versions.length && !actions.length) return;
    await this.withClient((client) =>
      inTransaction(client, async () => {
        if (this.forceSynchronousCommit) await client.query('SET LOCAL synchronous_commit = on');
        const leaseSession = leaseSessions.get(this.url);
        if (leaseSession !== undefined) {
          await client.query('SELECT pg_advisory_xact_lock_shared($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_WRITES]);
          const held = await client.query(
            `SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND classid = $1::bigint::oid AND objid = $2::bigint::oid AND objsubid = 2 AND pid = $3 AND granted`,
            [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE, leaseSession],
          );
          if (held.rowCount === 0) throw new LeaseLostError('this coordinator no longer holds the active lease in PostgreSQL (its lease connection ended): nothing more is written');
        }
        if (doc !== null) await client.query('INSERT INTO document (id, body) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET body = excluded.body', [doc]);
        for (const r of rounds) {
          await client.query(
            `INSERT INTO rounds (experiment, round, status, version_id, charged, body) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (experiment, round) DO UPDATE SET status = excluded.status, version_id = excluded.version_id, charged = excluded.charged, body = excluded.body`,
            r,
          );
        }
        for (const v of versions) await client.query('INSERT INTO versions (id, experiment, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET body = excluded.body', v);
        if (actions.length) {
          // Sequence numbers have gaps (a rolled-back insert, a crash): the count is kept beside.
          for (const a of actions) await client.query('INSERT INTO deployment_actions (body) VALUES ($1)', [a]);
          await client.query(`UPDATE counters SET value = value + $1 WHERE name = 'deployment_actions'`, [actions.length]);
        }
      }),
    );
  }

  async round(experiment: string, round: number): Promise<RoundRecord | null> {
    if (!isKey(experiment) || !Number.isSafeInteger(round)) return null;
    return bodyOf<RoundRecord>(await this.query('SELECT body FROM rounds WHERE experiment = $1 AND round = $2', [experiment, String(round)]), 'rounds');
  }

  async rounds(experiment: string, q: RoundQuery = {}): Promise<RoundRecord[]> {
    if (!isKey(experiment)) return [];
    const before = q.before === undefined ? null : bound(q.before);
    const params: unknown[] = [experiment];
    let where = 'experiment = $1';
    if (before !== null) {
      params.push(before);
      where += ` AND round < $${params.length}`;
    }
    if (q.limit === undefined) return bodies<RoundRecord>(await this.query(`SELECT body FROM rounds WHERE ${where} ORDER BY round`, params), 'rounds');
    params.push(limitOf(q.limit));
    return bodies<RoundRecord>(await this.query(`SELECT body FROM rounds WHERE ${where} ORDER BY round DESC LIMIT $${params.length}`, params), 'rounds').reverse();
  }

  async roundOfVersion(versionId: string): Promise<RoundRecord | null> {
    if (!isKey(versionId)) return null;
    return bodyOf<RoundRecord>(await this.query('SELECT body FROM rounds WHERE version_id = $1 LIMIT 1', [versionId]), 'rounds');
  }

  async runningRounds(): Promise<RoundRecord[]> {
    return bodies<RoundRecord>(await this.query(`SELECT body FROM rounds WHERE status = 'running' ORDER BY experiment, round`), 'rounds');
  }

  async lastRoundNumber(experiment: string): Promise<number> {
    if (!isKey(experiment)) return 0;
    return Number((await this.query('SELECT COALESCE(MAX(round), 0) AS n FROM rounds WHERE experiment = $1', [experiment]))[0].n);
  }

  async chargedRounds(experiment: string): Promise<RoundRecord[]> {
    if (!isKey(experiment)) return [];
    return bodies<RoundRecord>(await this.query('SELECT body FROM rounds WHERE experiment = $1 AND charged ORDER BY round', [experiment]), 'rounds');
  }

  async version(id: string): Promise<VersionRecord | null> {
    if (!isKey(id)) return null;
    return bodyOf<VersionRecord>(await this.query('SELECT body FROM versions WHERE id = $1', [id]), 'versions');
  }

  async versionsWithPrefix(prefix: string, limit: number): Promise<VersionRecord[]> {
    if (!isKey(prefix)) return [];
    // A range on the unique index (ids are lower-case hex, compared bytewise: COLLATE "C").
    return bodies<VersionRecord>(await this.query('SELECT body FROM versions WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3', [prefix, `${prefix}g`, limitOf(limit)]), 'versions');
  }

  async versions(experiment: string, q: { limit?: number } = {}): Promise<VersionRecord[]> {
    if (!isKey(experiment)) return [];
    if (q.limit === undefined) return bodies<VersionRecord>(await this.query('SELECT body FROM versions WHERE experiment = $1 ORDER BY seq', [experiment]), 'versions');
    return bodies<VersionRecord>(await this.query('SELECT body FROM versions WHERE experiment = $1 ORDER BY seq DESC LIMIT $2', [experiment, limitOf(q.limit)]), 'versions').reverse();
  }

  async deploymentActions(limit: number): Promise<{ actions: DeploymentAction[]; total: number }> {
    const actions = bodies<DeploymentAction>(await this.query('SELECT body FROM deployment_actions ORDER BY seq DESC LIMIT $1', [limitOf(limit)]), 'deployment_actions').reverse();
    const total = Number((await this.query(`SELECT value FROM counters WHERE name = 'deployment_actions'`))[0]?.value ?? 0);
    return { actions, total };
  }

  /**
   * A new connection to the same database, outside the pool (the caller ends it): for state
   * that lives as long as a session, such as pg_advisory_lock(ADVISORY_LOCK_CLASS, key).
   */
  async dedicatedClient(): Promise<pg.Client> {
    if (this.closed) throw new Error('the PostgreSQL store is closed');
    const client = new pg.Client(this.config);
    client.on('error', () => {});
    await client.connect();
    return client;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async query(text: string, params?: unknown[]): Promise<Row[]> {
    return (await this.pool.query(text, params)).rows as Row[];
  }
}

function clientConfig(url: string): pg.ClientConfig {
  return { connectionString: url, application_name: 'fedmed-coordinator', connectionTimeoutMillis: CONNECT_TIMEOUT_MS, keepAlive: true };
}

async function inTransaction(client: pg.PoolClient, body: () => Promise<void>): Promise<void> {
  await client.query('BEGIN');
  try {
    await body();
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  }
}

/**
 * Where the store is, for logs (the URL without its password), the password (to keep it out of
 * messages) and host/port/database for connection errors. A string that is not a URL is refused
 * without being echoed (it may hold a password).
 */
function describeUrl(url: string): { location: string; password: string[]; target: string } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new StoreFormatError('--database is not a PostgreSQL URL (postgres://user:password@host:port/database)');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new StoreFormatError(`--database must be a postgres:// or postgresql:// URL, not ${u.protocol}//…`);
  const password = [safeDecode(u.password), u.searchParams.get('password'), u.searchParams.get('sslpassword')].filter((p): p is string => !!p);
  u.password = '';
  u.searchParams.delete('password');
  u.searchParams.delete('sslpassword');
  const socketHost = u.searchParams.get('host');
  const host = safeDecode(u.hostname) || socketHost || 'localhost';
  const database = safeDecode(u.pathname.replace(/^\//, '')) || safeDecode(u.username) || '(default database)';
  return { location: u.toString(), password, target: `host ${host}${u.port ? ` port ${u.port}` : ''}, database ${database}` };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function scrub(message: string, secrets: string[]): string {
  return secrets.reduce((m, secret) => m.split(secret).join('***'), message);
}

function isConnectionError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return !(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)); // a server-reported SQLSTATE leaves the connection usable
}

/** PostgreSQL text cannot hold U+0000: no stored key has one. */
function isKey(s: unknown): s is string {
  return typeof s === 'string' && !s.includes('\u0000');
}

/** A key column's value (a non-string goes to the database as is, and its constraints judge it). */
function key<T>(s: T): T {
  if (typeof s === 'string' && s.includes('\u0000')) throw new StoreFormatError(`not a storable key (it holds U+0000): ${JSON.stringify(s)}`);
  return s;
}

/** LIMIT as SQLite reads it: an integer, a negative one meaning no limit. */
function limitOf(limit: number): string | null {
  if (!Number.isFinite(limit)) return Number.isNaN(limit) ? '0' : null;
  const n = Math.trunc(limit);
  return n < 0 ? null : String(n);
}

/** `round < before` for integer rounds with any numeric `before`. */
function bound(before: number): string {
  if (Number.isNaN(before)) return '-9223372036854775808';
  if (before === Infinity || before > Number.MAX_SAFE_INTEGER) return String(Number.MAX_SAFE_INTEGER);
  if (before === -Infinity || before < -Number.MAX_SAFE_INTEGER) return String(-Number.MAX_SAFE_INTEGER);
  return String(Math.ceil(before));
}

function parse<T>(body: unknown, table: string): T {
  try {
    return JSON.parse(String(body)) as T;
  } catch (err) {
    throw new StoreFormatError(`a row of ${table} is not JSON (${errorMessage(err)})`);
  }
}

function bodyOf<T>(rows: Row[], table: string): T | null {
  return rows.length ? parse<T>(rows[0].body, table) : null;
}

function bodies<T>(rows: Row[], table: string): T[] {
  return rows.map((r) => parse<T>(r.body, table));
}
