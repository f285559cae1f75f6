/**
 * The coordinator's persistent state: metadata in one lowdb JSON document (written atomically,
 * temporary file + rename, owner-only: OwnerOnlyJsonFile) and model parameters as
 * content-addressed `.fmp` blobs named by version id. Every file fedmed creates here is 0600,
 * every directory 0700. Writes are serialised; a crash leaves either the old or the
 * new document, never half of one.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { join } from 'node:path';
import { Low } from 'lowdb';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { loadParamsFile, saveParamsFile } from '../../shared/model/paramsFile.js';
import { OwnerOnlyJsonFile, ownerOnly } from './ownerOnlyJsonFile.js';
import { emptyStore, type StoreData } from './storeSchema.js';

export class CoordinatorStore {
  private queue: Promise<void> = Promise.resolve();
  private pending: Promise<void> | null = null;

  private constructor(
    private readonly db: Low<StoreData>,
    readonly dataDir: string,
  ) {}

  static async open(dataDir: string): Promise<CoordinatorStore> {
    // Owner only: the document names every site and holds token hashes; blobs are the models.
    // (A data dir the operator made keeps its mode; what fedmed creates is 0700.)
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    mkdirSync(join(dataDir, 'blobs'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dataDir, 'strategy-state'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dataDir, 'ckks-versions'), { recursive: true, mode: 0o700 });
    mkdirSync(join(dataDir, 'ckks-keys'), { recursive: true, mode: 0o700 });
    // lowdb's document, written owner-only (0600) by our adapter; one left 0644 by an older version is tightened.
    const file = join(dataDir, 'fedmed.json');
    await ownerOnly(file);
    const db = new Low<StoreData>(new OwnerOnlyJsonFile<StoreData>(file), emptyStore());
    await db.read();
    return new CoordinatorStore(db, dataDir);
  }

  /** The current document (mutate it, then call write()). */
  get data(): StoreData {
    return this.db.data;
  }

  /**
   * Persists the document. Writes are serialised, and calls made while a write is waiting to
   * start share it (it will include their changes): a burst of changes — a thousand sites
   * connecting — costs a few writes, not a thousand.
   */
  write(): Promise<void> {
    if (this.pending) return this.pending;
    const next = this.queue.then(() => {
      this.pending = null; // changes from now on need the next write
      return this.db.write();
    });
    this.pending = next;
    this.queue = next.catch(() => {});
    return next;
  }

  /** Applies `change` to the document and persists it. */
  async update(change: (data: StoreData) => void): Promise<void> {
    change(this.db.data);
    await this.write();
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
