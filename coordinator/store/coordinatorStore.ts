/**
 * The coordinator's persistent state: the document and history in a StoreBackend (SQLite in
 * DATA_DIR by default, PostgreSQL with `--database`), model parameters as content-addressed
 * `.fmp` blobs named by version id (written durably before any record names them). Every file
 * fedmed creates here is 0600, every directory 0700.
 *
 * The document is held in memory and written whole (it is bounded by the federation's size);
 * history rows are written with it, in the same transaction, and read back by key. Writes are
 * serialised; a crash leaves the last committed state, never half of one.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { join } from 'node:path';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { loadParamsFile, saveParamsFile } from '../../shared/model/paramsFile.js';
import type { RoundQuery, StoreBackend } from './storeBackend.js';
import { SqliteBackend } from './sqliteBackend.js';
import { migrateLegacyJson } from './legacyJsonStore.js';
import { emptyDocument, type DeploymentAction, type HistoryWrites, type RoundRecord, type StoreDocument, type VersionRecord } from './storeSchema.js';

export interface StoreOptions {
  /** A PostgreSQL URL (postgres://…): the records go there instead of DATA_DIR/fedmed.db. */
  database?: string;
}

export class CoordinatorStore {
  private queue: Promise<void> = Promise.resolve();
  private pending: Promise<void> | null = null;
  /** What the waiting write will include: the document (when asked) and history rows. */
  private batch = newBatch();

  private constructor(
    private readonly backend: StoreBackend,
    private doc: StoreDocument,
    readonly dataDir: string,
  ) {}

  static async open(dataDir: string, options: StoreOptions = {}): Promise<CoordinatorStore> {
    // Owner only: the records name every site and hold token hashes; blobs are the models.
    // (A data dir the operator made keeps its mode; what fedmed creates is 0700.)
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    for (const dir of ['blobs', 'strategy-state', 'ckks-versions', 'ckks-keys']) mkdirSync(join(dataDir, dir), { recursive: true, mode: 0o700 });
    const backend = options.database ? await openPostgres(options.database) : await SqliteBackend.open(dataDir);
    try {
      let doc = await backend.readDocument();
      if (!doc) doc = (await migrateLegacyJson(dataDir, backend)) ?? emptyDocument();
      return new CoordinatorStore(backend, doc, dataDir);
    } catch (err) {
      await backend.close();
      throw err;
    }
  }

  /** Where the records are (for the start-up log and `fedmed coordinator status`). */
  get location(): StoreBackend['description'] {
    return this.backend.description;
  }

  /** The document (mutate it, then call write()). */
  get data(): StoreDocument {
    return this.doc;
  }

  /**
   * Persists the document with `history` in one transaction. Writes are serialised, and calls
   * made while a write is waiting to start share it (it includes their changes and rows): a
   * burst of changes — a thousand sites connecting — costs a few writes, not a thousand.
   */
  write(history: HistoryWrites = {}): Promise<void> {
    this.batch.document = true;
    return this.enqueue(history);
  }

  /** Persists history rows only (the document is written only if another caller changed it). */
  writeHistory(history: HistoryWrites): Promise<void> {
    return this.enqueue(history);
  }

  /** Applies `change` to the document and persists it (with `history`). */
  async update(change: (data: StoreDocument) => void, history: HistoryWrites = {}): Promise<void> {
    change(this.doc);
    await this.write(history);
  }

  private enqueue(history: HistoryWrites): Promise<void> {
    const b = this.batch;
    for (const r of history.rounds ?? []) b.rounds.set(`${r.experiment}\n${r.round}`, r);
    for (const v of history.versions ?? []) b.versions.set(v.id, v);
    b.deploymentActions.push(...(history.deploymentActions ?? []));
    if (this.pending) return this.pending;
    const next = this.queue.then(() => {
      // Changes from now on need the next write; rows are serialised now, with their latest state.
      const batch = this.batch;
      this.batch = newBatch();
      this.pending = null;
      return this.backend.commit(batch.document ? this.doc : null, { rounds: [...batch.rounds.values()], versions: [...batch.versions.values()], deploymentActions: batch.deploymentActions });
    });
    this.pending = next;
    this.queue = next.catch(() => {});
    return next;
  }

  /** Waits for the writes in flight, then closes the backend. */
  async close(): Promise<void> {
    await this.queue;
    await this.backend.close();
  }

  // History, read by key (see StoreBackend).
  round(experiment: string, round: number): Promise<RoundRecord | null> {
    return this.backend.round(experiment, round);
  }
  rounds(experiment: string, query?: RoundQuery): Promise<RoundRecord[]> {
    return this.backend.rounds(experiment, query);
  }
  roundOfVersion(versionId: string): Promise<RoundRecord | null> {
    return this.backend.roundOfVersion(versionId);
  }
  runningRounds(): Promise<RoundRecord[]> {
    return this.backend.runningRounds();
  }
  lastRoundNumber(experiment: string): Promise<number> {
    return this.backend.lastRoundNumber(experiment);
  }
  chargedRounds(experiment: string): Promise<RoundRecord[]> {
    return this.backend.chargedRounds(experiment);
  }
  version(id: string): Promise<VersionRecord | null> {
    return this.backend.version(id);
  }
  versionsWithPrefix(prefix: string, limit: number): Promise<VersionRecord[]> {
    return this.backend.versionsWithPrefix(prefix, limit);
  }
  versions(experiment: string, query?: { limit?: number }): Promise<VersionRecord[]> {
    return this.backend.versions(experiment, query);
  }
  deploymentActions(limit: number): Promise<{ actions: DeploymentAction[]; total: number }> {
    return this.backend.deploymentActions(limit);
  }

  blobPath(versionId: string): string {
    if (!/^[0-9a-f]{64}$/.test(versionId)) throw new RangeError(`not a version id: ${versionId}`);
    return join(this.dataDir, 'blobs', `${versionId}.fmp`);
  }

  saveParams(versionId: string, spec: ModelSpec, params: Float32Array, sha256?: string): void {
    saveParamsFile(this.blobPath(versionId), spec, params, { sha256 });
  }

  /** A stateful strategy's optimiser state after producing `versionId` (written atomically). */
  saveStrategyState(experiment: string, versionId: string, bytes: Uint8Array): void {
    writeFileAtomic(this.strategyStatePath(experiment, versionId), bytes);
  }

  /** The state saved with `versionId`, or null. */
  loadStrategyState(experiment: string, versionId: string): Uint8Array | null {
    const path = this.strategyStatePath(experiment, versionId);
    return existsSync(path) ? readFileSync(path) : null;
  }

  private strategyStatePath(experiment: string, versionId: string): string {
    if (!/^[\w.-]+$/.test(experiment)) throw new RangeError(`not an experiment id: ${experiment}`);
    if (!/^[0-9a-f]{64}$/.test(versionId)) throw new RangeError(`not a version id: ${versionId}`);
    return join(this.dataDir, 'strategy-state', `${experiment}-${versionId}.bin`);
  }

  /** A CKKS version's encrypted aggregate (written atomically before the version is recorded). */
  saveEncryptedVersion(versionId: string, bytes: Uint8Array): void {
    writeFileAtomic(this.encryptedVersionPath(versionId), bytes);
  }

  loadEncryptedVersion(versionId: string): Buffer {
    return readFileSync(this.encryptedVersionPath(versionId));
  }

  private encryptedVersionPath(versionId: string): string {
    if (!/^[0-9a-f]{64}$/.test(versionId)) throw new RangeError(`not a version id: ${versionId}`);
    return join(this.dataDir, 'ckks-versions', `${versionId}.fmck`);
  }

  /** A site's copy of a CKKS secret key, wrapped to the site's encryption key by the admin. */
  saveWrappedKey(keySet: string, site: string, bytes: Uint8Array): void {
    const path = this.wrappedKeyPath(keySet, site);
    mkdirSync(join(this.dataDir, 'ckks-keys', keySet), { recursive: true, mode: 0o700 });
    writeFileAtomic(path, bytes, 0o600);
  }

  loadWrappedKey(keySet: string, site: string): Buffer | null {
    const path = this.wrappedKeyPath(keySet, site);
    return existsSync(path) ? readFileSync(path) : null;
  }

  private wrappedKeyPath(keySet: string, site: string): string {
    if (!/^[0-9a-f]{32}$/.test(keySet)) throw new RangeError(`not a key set id: ${keySet}`);
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(site) || site.startsWith('.')) throw new RangeError(`not a site name: ${site}`);
    return join(this.dataDir, 'ckks-keys', keySet, `${site}.fmkw`);
  }

  loadParams(versionId: string, spec: ModelSpec): Float32Array {
    return loadParamsFile(this.blobPath(versionId), spec).params;
  }
}

function newBatch(): { document: boolean; rounds: Map<string, RoundRecord>; versions: Map<string, VersionRecord>; deploymentActions: DeploymentAction[] } {
  return { document: false, rounds: new Map(), versions: new Map(), deploymentActions: [] };
}

/** The PostgreSQL backend, loaded only when asked for (its client is not needed otherwise). */
async function openPostgres(url: string): Promise<StoreBackend> {
  const { PostgresBackend } = await import('./postgresBackend.js');
  return PostgresBackend.open(url);
}
