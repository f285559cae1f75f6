/**
 * The embedded store: one SQLite database, DATA_DIR/fedmed.db (node:sqlite, which ships with
 * Node 22: no native module, no server). Write-ahead log with synchronous=FULL: a commit is on
 * disk before it returns, and a crash at any point leaves the last committed state (SQLite
 * replays or discards the log on the next open). The file is created owner-only; SQLite gives
 * its -wal and -shm files the database's mode.
 *
 * node:sqlite is synchronous: each call blocks the event loop for the statement's duration —
 * microseconds for the keyed reads here, about a millisecond for a commit's fsync.
 */
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { RoundQuery, StoreBackend } from './storeBackend.js';
import type { DeploymentAction, HistoryWrites, RoundRecord, StoreDocument, VersionRecord } from './storeSchema.js';
import { loadNodeSqlite } from '../../shared/storage/nodeSqlite.js';
import { StoreFormatError } from '../../shared/errors.js';

/** Schema migrations, applied in order; the database records the last one it has. */
const MIGRATIONS: string[] = [
  `CREATE TABLE document (id INTEGER PRIMARY KEY CHECK (id = 1), body TEXT NOT NULL);
   CREATE TABLE rounds (experiment TEXT NOT NULL, round INTEGER NOT NULL, status TEXT NOT NULL, version_id TEXT, charged INTEGER NOT NULL, body TEXT NOT NULL, PRIMARY KEY (experiment, round));
   CREATE INDEX rounds_by_version ON rounds (version_id) WHERE version_id IS NOT NULL;
   CREATE INDEX rounds_running ON rounds (status) WHERE status = 'running';
   CREATE TABLE versions (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, experiment TEXT NOT NULL, body TEXT NOT NULL);
   CREATE INDEX versions_by_experiment ON versions (experiment, seq);
   CREATE TABLE deployment_actions (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);`,
];

export const SQLITE_FILE = 'fedmed.db';

type Row = Record<string, unknown>;

export class SqliteBackend implements StoreBackend {
  readonly description: StoreBackend['description'];
  private readonly statements = new Map<string, StatementSync>();

  private constructor(
    private readonly db: DatabaseSync,
    path: string,
  ) {
    this.description = { kind: 'sqlite', location: path };
  }

  static async open(dataDir: string): Promise<SqliteBackend> {
    const path = join(dataDir, SQLITE_FILE);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    closeSync(openSync(path, 'a', 0o600)); // owner-only before SQLite creates it with its default mode
    const { DatabaseSync } = await loadNodeSqlite();
    const db = new DatabaseSync(path);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
    const backend = new SqliteBackend(db, path);
    backend.migrate();
    return backend;
  }

  private migrate(): void {
    this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)');
    const done = Number((this.db.prepare('SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations').get() as Row).v);
    if (done > MIGRATIONS.length) throw new StoreFormatError(`${this.description.location} has schema version ${done}; this fedmed knows up to ${MIGRATIONS.length} (a newer fedmed wrote it)`);
    for (let v = done + 1; v <= MIGRATIONS.length; v++) {
      this.transaction(() => {
        this.db.exec(MIGRATIONS[v - 1]);
        this.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(v, new Date().toISOString());
      });
    }
  }

  private stmt(sql: string): StatementSync {
    let s = this.statements.get(sql);
    if (!s) this.statements.set(sql, (s = this.db.prepare(sql)));
    return s;
  }

  private transaction(body: () => void): void {
    this.db.exec('BEGIN IMMEDIATE');
    try {
      body();
      this.db.exec('COMMIT');
    } catch (err) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  async readDocument(): Promise<StoreDocument | null> {
    const row = this.stmt('SELECT body FROM document WHERE id = 1').get() as Row | undefined;
    return row ? (JSON.parse(String(row.body)) as StoreDocument) : null;
  }

  async commit(document: StoreDocument | null, writes: HistoryWrites): Promise<void> {
    // Serialise first: a record that cannot be written fails before the transaction starts.
    const doc = document ? JSON.stringify(document) : null;
    const rounds = (writes.rounds ?? []).map((r) => [r.experiment, r.round, r.status, r.versionId, r.privacy?.charged ? 1 : 0, JSON.stringify(r)] as const);
    const versions = (writes.versions ?? []).map((v) => [v.id, v.experiment, JSON.stringify(v)] as const);
    const actions = (writes.deploymentActions ?? []).map((a) => JSON.stringify(a));
    this.transaction(() => {
      if (doc !== null) this.stmt('INSERT INTO document (id, body) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body').run(doc);
      const round = this.stmt(
        `INSERT INTO rounds (experiment, round, status, version_id, charged, body) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (experiment, round) DO UPDATE SET status = excluded.status, version_id = excluded.version_id, charged = excluded.charged, body = excluded.body`,
      );
      for (const r of rounds) round.run(...r);
      const version = this.stmt('INSERT INTO versions (id, experiment, body) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body');
      for (const v of versions) version.run(...v);
      const action = this.stmt('INSERT INTO deployment_actions (body) VALUES (?)');
      for (const a of actions) action.run(a);
    });
  }

  async round(experiment: string, round: number): Promise<RoundRecord | null> {
    return bodyOf<RoundRecord>(this.stmt('SELECT body FROM rounds WHERE experiment = ? AND round = ?').get(experiment, round));
  }

  async rounds(experiment: string, q: RoundQuery = {}): Promise<RoundRecord[]> {
    const before = q.before ?? Number.MAX_SAFE_INTEGER;
    const rows = q.limit === undefined
      ? this.stmt('SELECT body FROM rounds WHERE experiment = ? AND round < ? ORDER BY round').all(experiment, before)
      : this.stmt('SELECT body FROM rounds WHERE experiment = ? AND round < ? ORDER BY round DESC LIMIT ?').all(experiment, before, q.limit).reverse();
    return bodies<RoundRecord>(rows);
  }

  async roundOfVersion(versionId: string): Promise<RoundRecord | null> {
    return bodyOf<RoundRecord>(this.stmt('SELECT body FROM rounds WHERE version_id = ? LIMIT 1').get(versionId));
  }

  async runningRounds(): Promise<RoundRecord[]> {
    return bodies<RoundRecord>(this.stmt(`SELECT body FROM rounds WHERE status = 'running'`).all());
  }

  async lastRoundNumber(experiment: string): Promise<number> {
    return Number((this.stmt('SELECT COALESCE(MAX(round), 0) AS n FROM rounds WHERE experiment = ?').get(experiment) as Row).n);
  }

  async chargedRounds(experiment: string): Promise<RoundRecord[]> {
    return bodies<RoundRecord>(this.stmt('SELECT body FROM rounds WHERE experiment = ? AND charged = 1 ORDER BY round').all(experiment));
  }

  async version(id: string): Promise<VersionRecord | null> {
    return bodyOf<VersionRecord>(this.stmt('SELECT body FROM versions WHERE id = ?').get(id));
  }

  async versionsWithPrefix(prefix: string, limit: number): Promise<VersionRecord[]> {
    // A range on the unique index (ids are lower-case hex: no LIKE wildcards to escape).
    return bodies<VersionRecord>(this.stmt('SELECT body FROM versions WHERE id >= ? AND id < ? ORDER BY id LIMIT ?').all(prefix, `${prefix}g`, limit));
  }

  async versions(experiment: string, q: { limit?: number } = {}): Promise<VersionRecord[]> {
    const rows = q.limit === undefined
      ? this.stmt('SELECT body FROM versions WHERE experiment = ? ORDER BY seq').all(experiment)
      : this.stmt('SELECT body FROM versions WHERE experiment = ? ORDER BY seq DESC LIMIT ?').all(experiment, q.limit).reverse();
    return bodies<VersionRecord>(rows);
  }

  async deploymentActions(limit: number): Promise<{ actions: DeploymentAction[]; total: number }> {
    const actions = bodies<DeploymentAction>(this.stmt('SELECT body FROM deployment_actions ORDER BY seq DESC LIMIT ?').all(limit).reverse());
    // Actions are never deleted: the last sequence number is the count (COUNT(*) would scan).
    const total = Number((this.stmt('SELECT COALESCE(MAX(seq), 0) AS n FROM deployment_actions').get() as Row).n);
    return { actions, total };
  }

  async close(): Promise<void> {
    if (this.db.isOpen) this.db.close();
  }
}

function bodyOf<T>(row: unknown): T | null {
  return row ? (JSON.parse(String((row as Row).body)) as T) : null;
}

function bodies<T>(rows: unknown[]): T[] {
  return rows.map((r) => JSON.parse(String((r as Row).body)) as T);
}
