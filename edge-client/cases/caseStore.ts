/**
 * The local case store: every DICOM instance the edge receives (C-STORE, PACS pull, import, or
 * an inference request) becomes one case, known by its pseudonym. A case keeps
 *   - non-identifying metadata (modality, body part, manufacturer and model — to see scanner
 *     shift — image geometry, transfer syntax) and where it came from (the kind of source only:
 *     an import's path or a calling AE title could name a patient or a ward);
 *   - the preprocessed model input (float32, the model's input spec, identified by its hash);
 *   - the clinician's label, with every change kept in `label_changes`;
 *   - the last inference answer;
 *   - `pixelHash`: a keyed hash of the decoded pixels (pseudonymiser.ts), to tell the same image
 *     re-sent under new UIDs (null for cases stored before schema 2);
 *   - the original DICOM only when the site says so (`keepOriginals`), as a separate file.
 * Never stored: names, IDs, dates, private tags, UIDs (only their keyed hashes).
 *
 * A case's split (train / validation / test) comes from its pseudonym's hash, so a case stays in
 * the same split forever, whatever else arrives. SQLite (node:sqlite) in STATE_DIR/cases/cases.db,
 * WAL, synchronous=FULL: a case is either stored whole or not at all.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { FedmedError } from '../../shared/errors.js';
import { loadNodeSqlite } from '../../shared/storage/nodeSqlite.js';
import type { Dataset, DatasetSplits } from '../data/dataset.js';
import type { InstanceMetadata, InstanceSource } from '../dicom/dicomTypes.js';
import { Pseudonymiser, type CasePseudonyms } from './pseudonymiser.js';

export type CaseSplit = 'train' | 'val' | 'test';

/** A model's answer for a case, kept with it. */
export interface CaseInference {
  version: string;
  provider: string;
  probabilities: number[];
  predictedClass: number;
  at: string;
}

export interface CaseRecord {
  id: string;
  study: string;
  series: string;
  source: InstanceSource['kind'];
  receivedAt: string;
  metadata: InstanceMetadata;
  inputSpecHash: string;
  inputShape: number[];
  split: CaseSplit;
  label: number | null;
  labelledBy: string | null;
  labelledAt: string | null;
  inference: CaseInference | null;
  original: boolean;
  /** HMAC-SHA256 (site key) of the first frame's decoded pixels (Pseudonymiser.pixelHash); null for older cases. */
  pixelHash: string | null;
}

export interface LabelChange {
  label: number | null;
  previous: number | null;
  by: string;
  at: string;
  /** How it was made: the inference service's API (with the token's id) or the CLI on the edge machine. */
  via: 'api' | 'cli';
  token: string | null;
}

/** A change the audit log has not recorded yet (label changes and deletions; the edge appends each once). */
export type UnauditedChange = { seq: number } & ({ kind: 'label'; case: string; change: LabelChange } | { kind: 'deletion'; before: string; count: number; by: string; at: string });

export interface CaseStats {
  cases: number;
  labelled: number;
  unlabelled: number;
  byLabel: Record<string, number>;
  bySplit: Record<CaseSplit, { cases: number; labelled: number }>;
  byModality: Record<string, number>;
  byScanner: Record<string, number>;
  oldest: string | null;
  newest: string | null;
}

/** A case that is not in the store (or was deleted). */
export class CaseNotFoundError extends FedmedError {
  constructor(id: string) {
    super('CASE_NOT_FOUND', `no case ${id} at this site`);
  }
}

/** A label that is not a class index, or a labeller without a name. */
export class CaseLabelError extends FedmedError {
  constructor(message: string) {
    super('CASE_LABEL_INVALID', message);
  }
}

const SPLIT_FRACTIONS = { train: 0.7, val: 0.15 }; // the rest is test

/** The split a case belongs to, from its pseudonym alone (stable, and as unlinkable as the pseudonym). */
export function splitOf(id: string): CaseSplit {
  const u = parseInt(id.slice(0, 8), 16) / 2 ** 32;
  return u < SPLIT_FRACTIONS.train ? 'train' : u < SPLIT_FRACTIONS.train + SPLIT_FRACTIONS.val ? 'val' : 'test';
}

interface CaseRow {
  id: string;
  study: string;
  series: string;
  source: string;
  received_at: string;
  metadata: string;
  input_spec_hash: string;
  input_shape: string;
  split: string;
  label: number | null;
  labelled_by: string | null;
  labelled_at: string | null;
  inference: string | null;
  original: number;
  pixel_hash: string | null;
}

const MIGRATIONS = [
  `CREATE TABLE cases (
     id TEXT PRIMARY KEY, study TEXT NOT NULL, series TEXT NOT NULL, source TEXT NOT NULL,
     received_at TEXT NOT NULL, metadata TEXT NOT NULL, input_spec_hash TEXT NOT NULL,
     input_shape TEXT NOT NULL, input BLOB NOT NULL, split TEXT NOT NULL,
     label INTEGER, labelled_by TEXT, labelled_at TEXT, inference TEXT, original INTEGER NOT NULL DEFAULT 0);
   CREATE INDEX cases_received ON cases (received_at);
   CREATE INDEX cases_labelled ON cases (label IS NULL, received_at);
   CREATE INDEX cases_spec ON cases (input_spec_hash, label);
   CREATE TABLE label_changes (case_id TEXT NOT NULL, label INTEGER, previous INTEGER, by TEXT NOT NULL, at TEXT NOT NULL, via TEXT NOT NULL, token TEXT);
   CREATE INDEX label_changes_case ON label_changes (case_id);
   -- what the audit log has yet to record (written in the same transaction as the change)
   CREATE TABLE unaudited (seq INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);`,
  // 2: the keyed pixel hash (existing cases keep null)
  `ALTER TABLE cases ADD COLUMN pixel_hash TEXT;
   CREATE INDEX cases_pixel_hash ON cases (pixel_hash);`,
];

export interface CaseStoreOptions {
  /** Keep each instance's original DICOM in STATE_DIR/cases/originals (default: no). */
  keepOriginals?: boolean;
}

export interface NewCase {
  metadata: InstanceMetadata;
  source: InstanceSource;
  input: Float32Array;
  inputShape: number[];
  inputSpecHash: string;
  /** The received DICOM, kept only with keepOriginals. */
  original?: Uint8Array;
}

export class CaseStore {
  readonly dir: string;
  private constructor(
    private readonly db: DatabaseSync,
    readonly pseudonyms: Pseudonymiser,
    dir: string,
    private readonly keepOriginals: boolean,
  ) {
    this.dir = dir;
  }

  /** Opens (creating) STATE_DIR/cases. */
  static async open(stateDir: string, options: CaseStoreOptions = {}): Promise<CaseStore> {
    const dir = join(stateDir, 'cases');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const { DatabaseSync } = await loadNodeSqlite();
    const db = new DatabaseSync(join(dir, 'cases.db'));
    try {
      db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;');
      const version = (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version;
      if (version > MIGRATIONS.length) throw new FedmedError('CASES_STORE_NEWER', `${join(dir, 'cases.db')} was written by a newer fedmed (schema ${version}, this one knows ${MIGRATIONS.length}); upgrade fedmed`);
      for (let v = version; v < MIGRATIONS.length; v++) {
        db.exec('BEGIN');
        db.exec(MIGRATIONS[v]);
        db.exec(`PRAGMA user_version = ${v + 1}`);
        db.exec('COMMIT');
      }
    } catch (err) {
      db.close();
      throw err;
    }
    return new CaseStore(db, Pseudonymiser.open(join(dir, 'pseudonym.key')), dir, options.keepOriginals ?? false);
  }

  close(): void {
    this.db.close();
  }

  /** Stores a case; an instance seen before (same SOP Instance UID) is the same case, left as it is. */
  put(p: CasePseudonyms, c: NewCase): { id: string; duplicate: boolean } {
    if (c.input.length !== c.inputShape.reduce((a, b) => a * b, 1)) throw new FedmedError('CASE_INPUT_INVALID', `case input has ${c.input.length} values, not [${c.inputShape.join(', ')}]`);
    const keep = this.keepOriginals && c.original !== undefined;
    if (keep) writeFileAtomic(this.originalPath(p.id), c.original!, 0o600); // before the row: a row never names a missing file
    const r = this.db
      .prepare('INSERT INTO cases (id, study, series, source, received_at, metadata, input_spec_hash, input_shape, input, split, original, pixel_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING')
      .run(p.id, p.study, p.series, c.source.kind, new Date().toISOString(), JSON.stringify(c.metadata), c.inputSpecHash, JSON.stringify(c.inputShape), new Uint8Array(c.input.buffer, c.input.byteOffset, c.input.byteLength), splitOf(p.id), keep ? 1 : 0, p.pixels ?? null);
    return { id: p.id, duplicate: Number(r.changes) === 0 };
  }

  /** The cases whose decoded pixels have this pixelHash (the same image, possibly under other UIDs), newest first. */
  withPixelHash(pixelHash: string): CaseRecord[] {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM cases WHERE pixel_hash = ? ORDER BY received_at DESC, id LIMIT 1000`).all(pixelHash) as unknown as CaseRow[]).map(toRecord);
  }

  get(id: string): CaseRecord | null {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM cases WHERE id = ?`).get(id) as CaseRow | undefined;
    return row ? toRecord(row) : null;
  }

  /** Newest first; `labelled` filters; `before` (a receivedAt) pages. */
  list(o: { labelled?: boolean; limit?: number; before?: string } = {}): CaseRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (o.labelled !== undefined) where.push(o.labelled ? 'label IS NOT NULL' : 'label IS NULL');
    if (o.before) {
      where.push('received_at < ?');
      args.push(o.before);
    }
    const limit = Math.max(1, Math.min(o.limit ?? 100, 1000));
    const rows = this.db.prepare(`SELECT ${COLUMNS} FROM cases ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at DESC, id LIMIT ${limit}`).all(...args) as unknown as CaseRow[];
    return rows.map(toRecord);
  }

  /** Sets (or with null, clears) a case's label; every change is kept. */
  label(id: string, label: number | null, by: string, o: { numClasses?: number; via: 'api' | 'cli'; token?: string | null }): LabelChange {
    const numClasses = o.numClasses;
    if (label !== null && (!Number.isInteger(label) || label < 0 || (numClasses !== undefined && label >= numClasses))) throw new CaseLabelError(`label must be a class index${numClasses !== undefined ? ` in 0..${numClasses - 1}` : ' (an integer ≥ 0)'} or null, got ${JSON.stringify(label)}`);
    if (typeof by !== 'string' || by.trim().length === 0 || by.length > 200) throw new CaseLabelError('"by" must name who labels the case (1–200 characters)');
    const at = new Date().toISOString();
    this.db.exec('BEGIN IMMEDIATE');
    try {
      const row = this.db.prepare('SELECT label FROM cases WHERE id = ?').get(id) as { label: number | null } | undefined;
      if (!row) throw new CaseNotFoundError(id);
      this.db.prepare('UPDATE cases SET label = ?, labelled_by = ?, labelled_at = ? WHERE id = ?').run(label, label === null ? null : by, label === null ? null : at, id);
      const change: LabelChange = { label, previous: row.label, by, at, via: o.via, token: o.token ?? null };
      this.db.prepare('INSERT INTO label_changes (case_id, label, previous, by, at, via, token) VALUES (?, ?, ?, ?, ?, ?, ?)').run(id, label, row.label, by, at, change.via, change.token);
      this.db.prepare('INSERT INTO unaudited (record) VALUES (?)').run(JSON.stringify({ kind: 'label', case: id, change }));
      this.db.exec('COMMIT');
      return change;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
  }

  labelHistory(id: string): LabelChange[] {
    return (this.db.prepare('SELECT label, previous, by, at, via, token FROM label_changes WHERE case_id = ? ORDER BY rowid').all(id) as unknown as LabelChange[]).map((c) => ({ label: c.label, previous: c.previous, by: c.by, at: c.at, via: c.via, token: c.token }));
  }

  /** Changes not yet in the audit log, oldest first. */
  unaudited(limit = 500): UnauditedChange[] {
    return (this.db.prepare(`SELECT seq, record FROM unaudited ORDER BY seq LIMIT ${Math.max(1, Math.min(limit, 10_000))}`).all() as { seq: number; record: string }[]).map((r) => ({ seq: r.seq, ...(JSON.parse(r.record) as Omit<UnauditedChange, 'seq'>) }) as UnauditedChange);
  }

  /** The audit log has recorded the changes up to `seq`. */
  audited(seq: number): void {
    this.db.prepare('DELETE FROM unaudited WHERE seq <= ?').run(seq);
  }

  setInference(id: string, inference: CaseInference): void {
    this.db.prepare('UPDATE cases SET inference = ? WHERE id = ?').run(JSON.stringify(inference), id);
  }

  /** The stored model input of a case. */
  input(id: string): Float32Array {
    const row = this.db.prepare('SELECT input FROM cases WHERE id = ?').get(id) as { input: Uint8Array } | undefined;
    if (!row) throw new CaseNotFoundError(id);
    return floats(row.input);
  }

  /** The original DICOM of a case, when the site keeps originals. */
  original(id: string): Uint8Array | null {
    const p = this.originalPath(id);
    return existsSync(p) ? readFileSync(p) : null;
  }

  stats(): CaseStats {
    const one = <T>(sql: string): T => this.db.prepare(sql).get() as T;
    const counts = one<{ cases: number; labelled: number; oldest: string | null; newest: string | null }>('SELECT COUNT(*) AS cases, COUNT(label) AS labelled, MIN(received_at) AS oldest, MAX(received_at) AS newest FROM cases');
    const grouped = (sql: string): Record<string, number> => Object.fromEntries((this.db.prepare(sql).all() as { k: string | number | null; n: number }[]).map((r) => [String(r.k ?? 'unknown'), r.n]));
    const bySplit = { train: { cases: 0, labelled: 0 }, val: { cases: 0, labelled: 0 }, test: { cases: 0, labelled: 0 } };
    for (const r of this.db.prepare('SELECT split, COUNT(*) AS cases, COUNT(label) AS labelled FROM cases GROUP BY split').all() as { split: CaseSplit; cases: number; labelled: number }[]) bySplit[r.split] = { cases: r.cases, labelled: r.labelled };
    return {
      cases: counts.cases,
      labelled: counts.labelled,
      unlabelled: counts.cases - counts.labelled,
      byLabel: grouped('SELECT label AS k, COUNT(*) AS n FROM cases WHERE label IS NOT NULL GROUP BY label'),
      bySplit,
      byModality: grouped("SELECT json_extract(metadata, '$.modality') AS k, COUNT(*) AS n FROM cases GROUP BY k"),
      byScanner: grouped("SELECT COALESCE(json_extract(metadata, '$.manufacturer'), 'unknown') || ' / ' || COALESCE(json_extract(metadata, '$.manufacturerModel'), 'unknown') AS k, COUNT(*) AS n FROM cases GROUP BY k"),
      oldest: counts.oldest,
      newest: counts.newest,
    };
  }

  /** Deletes the cases received before `date` (with their label history and originals); returns how many. */
  deleteBefore(date: Date, by = 'retention'): number {
    const before = date.toISOString();
    const ids = (this.db.prepare('SELECT id FROM cases WHERE received_at < ?').all(before) as { id: string }[]).map((r) => r.id);
    this.db.exec('BEGIN IMMEDIATE');
    try {
      this.db.prepare('DELETE FROM label_changes WHERE case_id IN (SELECT id FROM cases WHERE received_at < ?)').run(before);
      this.db.prepare('DELETE FROM cases WHERE received_at < ?').run(before);
      if (ids.length > 0) this.db.prepare('INSERT INTO unaudited (record) VALUES (?)').run(JSON.stringify({ kind: 'deletion', before, count: ids.length, by, at: new Date().toISOString() }));
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    }
    for (const id of ids) rmSync(this.originalPath(id), { force: true });
    return ids.length;
  }

  /** Labelled cases per split for this input spec (labels below `numClasses` only, as datasets() reads them). */
  labelledCounts(inputSpecHash: string, numClasses = Number.MAX_SAFE_INTEGER): Record<CaseSplit, number> {
    const out: Record<CaseSplit, number> = { train: 0, val: 0, test: 0 };
    for (const r of this.db.prepare('SELECT split, COUNT(*) AS n FROM cases WHERE input_spec_hash = ? AND label IS NOT NULL AND label < ? GROUP BY split').all(inputSpecHash, numClasses) as { split: CaseSplit; n: number }[]) out[r.split] = r.n;
    return out;
  }

  /**
   * The labelled cases preprocessed for this input spec, as train / validation / test data sets
   * (labels outside 0..numClasses-1 are left out: they were given for another model).
   */
  datasets(inputSpecHash: string, exampleShape: number[], numClasses: number): DatasetSplits {
    const size = exampleShape.reduce((a, b) => a * b, 1);
    const parts: Record<CaseSplit, { x: Float32Array[]; y: number[] }> = { train: { x: [], y: [] }, val: { x: [], y: [] }, test: { x: [], y: [] } };
    for (const r of this.db.prepare('SELECT split, label, input FROM cases WHERE input_spec_hash = ? AND label IS NOT NULL AND label < ? ORDER BY id').iterate(inputSpecHash, numClasses) as Iterable<{ split: CaseSplit; label: number; input: Uint8Array }>) {
      const x = floats(r.input);
      if (x.length !== size) continue;
      parts[r.split].x.push(x);
      parts[r.split].y.push(r.label);
    }
    const dataset = (p: { x: Float32Array[]; y: number[] }): Dataset => {
      const x = new Float32Array(p.x.length * size);
      p.x.forEach((e, i) => x.set(e, i * size));
      return { x, exampleShape: [...exampleShape], y: Int32Array.from(p.y), numClasses };
    };
    return { train: dataset(parts.train), val: dataset(parts.val), test: dataset(parts.test), source: `case store (${this.dir})` };
  }

  private originalPath(id: string): string {
    const dir = join(this.dir, 'originals');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    return join(dir, `${id}.dcm`);
  }
}

const COLUMNS = 'id, study, series, source, received_at, metadata, input_spec_hash, input_shape, split, label, labelled_by, labelled_at, inference, original, pixel_hash';

function toRecord(r: CaseRow): CaseRecord {
  return {
    id: r.id,
    study: r.study,
    series: r.series,
    source: r.source as InstanceSource['kind'],
    receivedAt: r.received_at,
    metadata: JSON.parse(r.metadata) as InstanceMetadata,
    inputSpecHash: r.input_spec_hash,
    inputShape: JSON.parse(r.input_shape) as number[],
    split: r.split as CaseSplit,
    label: r.label,
    labelledBy: r.labelled_by,
    labelledAt: r.labelled_at,
    inference: r.inference ? (JSON.parse(r.inference) as CaseInference) : null,
    original: r.original === 1,
    pixelHash: r.pixel_hash,
  };
}

/** A float32 copy of a BLOB (SQLite's bytes need not be 4-byte aligned). */
function floats(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.byteLength / 4);
  new Uint8Array(out.buffer).set(bytes.subarray(0, out.length * 4));
  return out;
}
