/**
 * The edge's deployed model versions on disk (STATE_DIR/versions/): each version's params
 * (`<id>.fmp`) and signed manifest (`<id>.manifest.json`), which version is active and the order
 * they were activated in (`active.json`), versions refused or rolled back (never re-installed
 * until the coordinator offers something newer), and at most one partial download
 * (`partial.bin` + `partial.json`) that a reconnection resumes. Every file is written
 * atomically; the last `keep` activated versions are kept. With the site's trust, every load
 * checks the manifest's signature again (against the admin key the site pinned), so a version
 * planted on disk is refused at start and on rollback.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { UsageError } from '../../shared/errors.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { loadParamsFile, saveParamsFile } from '../../shared/model/paramsFile.js';
import { checkModelAgainstManifest, verifyManifestSignature, type SignedManifest } from '../../shared/model/versionManifest.js';
import type { FederationTrust } from '../../shared/secure/trust/federationTrust.js';

export interface StoredVersion {
  signed: SignedManifest;
  spec: ModelSpec;
  params: Float32Array;
}

interface ActiveFile {
  active: string | null;
  /**
   * The release the active version was installed at, kept apart from its manifest: if the
   * manifest stops verifying (say its signer's certificate was revoked after a key rotation),
   * the anti-downgrade reference is not lost with it.
   */
  activeRelease?: number;
  /** Versions in the order they were activated (last = active). */
  history: string[];
  /** Versions this edge will not run, with why (refused at install, or rolled back). */
  refused: Record<string, string>;
}

export interface PartialDownload {
  version: string;
  base: string | null;
  sha256: string;
  totalBytes: number;
}

const ID = /^[0-9a-f]{64}$/;

/** A temporary file writeFileAtomic (shared/atomicFile.ts) left behind when its process died mid-write (not one this process is writing). */
export function isStaleTempFile(name: string): boolean {
  const m = /\.(\d+)\.\d+\.tmp$/.exec(name);
  return m !== null && Number(m[1]) !== process.pid;
}

export class VersionStore {
  readonly dir: string;

  constructor(
    stateDir: string,
    /** How many activated versions to keep on disk (>= 2, so there is one to roll back to). */
    readonly keep = 3,
    private readonly trust?: FederationTrust,
  ) {
    this.dir = join(stateDir, 'versions');
    if (!Number.isInteger(keep) || keep < 2) throw new UsageError(`keep versions must be an integer >= 2, got ${keep}`);
  }

  has(id: string): boolean {
    return ID.test(id) && existsSync(this.paramsPath(id)) && existsSync(this.manifestPath(id));
  }

  /** Loads a stored version and checks it against its manifest again (disks rot) and the manifest's signature (disks are written to). */
  load(id: string): StoredVersion {
    const signed = this.manifest(id);
    const { spec, params } = loadParamsFile(this.paramsPath(id));
    checkModelAgainstManifest(signed.manifest, spec, params);
    return { signed, spec, params };
  }

  /** A stored version's signed manifest (signature checked when the store has the site's trust). */
  manifest(id: string): SignedManifest {
    if (!this.has(id)) throw new UsageError(`model version ${id} is not stored in ${this.dir}`);
    const signed = JSON.parse(readFileSync(this.manifestPath(id), 'utf8')) as SignedManifest;
    if (signed.manifest?.id !== id) throw new UsageError(`${this.manifestPath(id)} is the manifest of another version`);
    if (this.trust) verifyManifestSignature(this.trust, signed, { at: 'release' });
    return signed;
  }

  /** The active version and the release it was installed at (null: none active). */
  activeRelease(): { id: string; release: number } | null {
    const a = this.readActive();
    if (!a.active) return null;
    if (a.activeRelease !== undefined) return { id: a.active, release: a.activeRelease };
    try {
      return { id: a.active, release: this.manifest(a.active).manifest.release };
    } catch {
      return { id: a.active, release: 0 }; // (a state dir from before releases were recorded)
    }
  }

  /** Replaces a stored version's manifest with a valid (newer, or re-signed) one of the same version. */
  putManifest(signed: SignedManifest): void {
    if (!this.has(signed.manifest.id)) throw new UsageError(`model version ${signed.manifest.id} is not stored in ${this.dir}`);
    writeFileAtomic(this.manifestPath(signed.manifest.id), Buffer.from(JSON.stringify(signed)));
    const a = this.readActive();
    if (a.active === signed.manifest.id && signed.manifest.release > (a.activeRelease ?? 0)) this.writeActive({ ...a, activeRelease: signed.manifest.release });
  }

  /** Stores a verified version (params first, manifest last: a version is present only when whole). */
  put(v: StoredVersion): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    saveParamsFile(this.paramsPath(v.signed.manifest.id), v.spec, v.params, { sha256: v.signed.manifest.paramsSha256 });
    writeFileAtomic(this.manifestPath(v.signed.manifest.id), Buffer.from(JSON.stringify(v.signed)));
  }

  get active(): string | null {
    return this.readActive().active;
  }

  /** Activation order, oldest first. */
  get history(): string[] {
    return this.readActive().history;
  }

  refusal(id: string): string | undefined {
    return this.readActive().refused[id];
  }

  /** Records that `id` now serves (installed at `release`), and prunes versions beyond the last `keep` activated. */
  setActive(id: string, release: number): void {
    const a = this.readActive();
    a.active = id;
    a.activeRelease = release;
    a.history = [...a.history.filter((x) => x !== id), id];
    delete a.refused[id];
    this.writeActive(a);
    this.prune(a);
  }

  refuse(id: string, reason: string): void {
    const a = this.readActive();
    a.refused[id] = reason.slice(0, 500);
    this.writeActive(a);
  }

  /**
   * By-hand rollback: makes `to` (a stored version id or a unique prefix; default: the version
   * active before the current one) active and marks the current one rolled back, so the edge
   * does not re-install it on its own.
   */
  rollback(to?: string): { from: string | null; to: string } {
    const a = this.readActive();
    const from = a.active;
    const matches = to ? this.stored().filter((id) => id.startsWith(to)) : [];
    const target = to ? (matches.length === 1 ? matches[0] : undefined) : a.history.filter((x) => x !== from && this.has(x)).at(-1);
    if (!target) throw new UsageError(to ? `version ${to} is not stored on this edge, or names more than one (stored: ${this.stored().join(', ') || 'none'})` : 'no earlier version is stored on this edge to roll back to');
    if (from) a.refused[from] = 'rolled back by hand';
    return this.switchTo(a, target);
  }

  /**
   * By-hand activation (site policy: manual deployment): makes the stored version `to` (an id or
   * a unique prefix) serve. Unlike a rollback, the version it replaces is not marked abandoned.
   */
  activate(to: string): { from: string | null; to: string } {
    const a = this.readActive();
    const matches = this.stored().filter((id) => id.startsWith(to));
    if (matches.length !== 1) throw new UsageError(`version ${to} is not stored on this edge, or names more than one (stored: ${this.stored().join(', ') || 'none'})`);
    return this.switchTo(a, matches[0]);
  }

  /** Makes `target` active by the operator's hand (the active record `a` as it will be written). */
  private switchTo(a: ActiveFile, target: string): { from: string | null; to: string } {
    const from = a.active;
    a.activeRelease = this.load(target).signed.manifest.release; // re-verified (hash and, with the site's trust, signature) before it is made active
    a.active = target;
    a.history = [...a.history.filter((x) => x !== target), target];
    delete a.refused[target];
    this.writeActive(a);
    return { from, to: target };
  }

  stored(): string[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .filter((f) => /^[0-9a-f]{64}\.manifest\.json$/.test(f))
      .map((f) => f.slice(0, 64));
  }

  /**
   * At the edge's start, before anything of this store is written: removes what a crash in the
   * middle of a write left behind — the temporary file of an atomic write (`NAME.<pid>.<ms>.tmp`,
   * see shared/atomicFile.ts: never read as state, but a model's worth of disk each), params
   * without their manifest (a `put` or a prune cut short: not a stored version, see `has`), and
   * half of a partial download (its bytes without their record, or the record without bytes).
   * Returns the names removed.
   */
  removeCrashLeftovers(): string[] {
    if (!existsSync(this.dir)) return [];
    const files = readdirSync(this.dir);
    const names = new Set(files);
    const removed: string[] = [];
    for (const f of files) {
      const orphanParams = /^[0-9a-f]{64}\.fmp$/.test(f) && !names.has(`${f.slice(0, 64)}.manifest.json`);
      const halfPartial = (f === 'partial.bin' && !names.has('partial.json')) || (f === 'partial.json' && !names.has('partial.bin'));
      if (!isStaleTempFile(f) && !orphanParams && !halfPartial) continue;
      rmSync(join(this.dir, f), { force: true });
      removed.push(f);
    }
    return removed;
  }

  // --- the partial download (one at a time) ---

  partial(): (PartialDownload & { bytes: number }) | null {
    const meta = join(this.dir, 'partial.json');
    if (!existsSync(meta) || !existsSync(this.partialPath)) return null;
    try {
      const p = JSON.parse(readFileSync(meta, 'utf8')) as PartialDownload;
      return { ...p, bytes: statSync(this.partialPath).size };
    } catch {
      return null;
    }
  }

  startPartial(p: PartialDownload): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    this.dropPartial();
    writeFileAtomic(this.partialPath, Buffer.alloc(0));
    writeFileAtomic(join(this.dir, 'partial.json'), Buffer.from(JSON.stringify(p)));
  }

  appendPartial(bytes: Uint8Array): void {
    appendFileSync(this.partialPath, bytes);
  }

  readPartial(): Buffer {
    return readFileSync(this.partialPath);
  }

  dropPartial(): void {
    rmSync(this.partialPath, { force: true });
    rmSync(join(this.dir, 'partial.json'), { force: true });
  }

  private get partialPath(): string {
    return join(this.dir, 'partial.bin');
  }

  private paramsPath(id: string): string {
    return join(this.dir, `${id}.fmp`);
  }

  private manifestPath(id: string): string {
    return join(this.dir, `${id}.manifest.json`);
  }

  private readActive(): ActiveFile {
    const f = join(this.dir, 'active.json');
    if (!existsSync(f)) return { active: null, history: [], refused: {} };
    return JSON.parse(readFileSync(f, 'utf8')) as ActiveFile;
  }

  private writeActive(a: ActiveFile): void {
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileAtomic(join(this.dir, 'active.json'), Buffer.from(`${JSON.stringify(a, null, 2)}\n`));
  }

  private prune(a: ActiveFile): void {
    const keep = new Set(a.history.slice(-this.keep));
    if (a.active) keep.add(a.active);
    for (const id of this.stored()) {
      if (keep.has(id)) continue;
      rmSync(this.manifestPath(id), { force: true });
      rmSync(this.paramsPath(id), { force: true });
    }
    a.history = a.history.filter((x) => keep.has(x));
    this.writeActive(a);
  }
}
