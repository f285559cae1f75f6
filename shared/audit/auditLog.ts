/**
 * A tamper-evident audit log: DIR/audit.jsonl (mode 0600), one hash-chained entry per line
 * (format: auditChain.ts) — the coordinator's (DATA_DIR) and each edge's (STATE_DIR). Only
 * appended to: entries are queued in the order they are recorded, written by one writer (several
 * queued entries in one write), and fsynced before their promise resolves; earlier lines are
 * never rewritten.
 *
 * At open the whole chain is verified. A broken log (an edited, deleted, reordered or truncated
 * line) does not stop its owner — availability comes first — but is reported loudly: a warning
 * in the owner's log, and `integrity()` says `ok: false, brokenAt: <seq>` (the coordinator adds
 * an `audit.integrity_broken` entry and shows it in GET /v1/audit) on every start until an admin
 * archives the file (moves it away: the next start begins a new chain). New entries keep being
 * appended to the same file, chained onto its last line as it is (a cut-short last line is first
 * terminated), so nothing already in the file is dropped and everything after the break still
 * chains.
 *
 * One flaw is repaired instead, at open: a crash in the middle of a write (SIGKILL, power loss)
 * can leave the last line cut short, without its `\n` — entries whose append never resolved.
 * When everything before it verifies, the torn tail is cut off (or, if it is a whole entry that
 * only lacks its `\n`, completed), durably, and an `audit.recovered` entry records the line, how
 * many bytes were dropped and their SHA-256. Complete lines are never rewritten.
 *
 * `recheck()` re-verifies the file when its size or modification time is not what this process
 * last wrote (someone else touched it while the owner ran).
 */
import { chmodSync, close, closeSync, existsSync, fstatSync, fsync, fsyncSync, ftruncateSync, mkdirSync, openSync, readSync, statSync, write, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { GENESIS, makeEntry, serializeEntry, sha256, verifyChain, type AuditActor, type AuditDetails, type AuditEntry, type ChainReport } from './auditChain.js';

export const AUDIT_FILE = 'audit.jsonl';
/** Entries kept in memory for GET /v1/audit (its largest `limit`). */
export const AUDIT_TAIL = 1000;

export interface AuditIntegrity {
  ok: boolean;
  /** Lines in the log. */
  entries: number;
  /** The seq at which the chain first breaks (then `line` and `reason` say where and why). */
  brokenAt?: number;
  line?: number;
  reason?: string;
  /** The hash of the last entry of the verified chain (of the last entry written, when ok). */
  head: string;
  /** One sentence for the dashboard. */
  message: string;
  checkedAt: string;
}

/** A line of the tail as GET /v1/audit shows it (a line that does not parse: its number and start). */
export type AuditTailItem = AuditEntry | { line: number; unparseable: string };

type Log = { warn(o: object, msg: string): void; error(o: object, msg: string): void };

/** Whose log it is, for the operator's messages: the process and the CLI flag that names its folder. */
export interface AuditOwner {
  name: 'coordinator' | 'edge';
  dirFlag: '--data-dir' | '--state-dir';
}

export const COORDINATOR_OWNER: AuditOwner = { name: 'coordinator', dirFlag: '--data-dir' };
export const EDGE_OWNER: AuditOwner = { name: 'edge', dirFlag: '--state-dir' };

/** The last entry written: what a signed chain head states (seq 0 and GENESIS for an empty log). */
export interface ChainHead {
  seq: number;
  hash: string;
}

export interface AuditRecord {
  actor: AuditActor;
  action: string;
  subject: string;
  details?: AuditDetails;
}

export class AuditLog {
  private fd: number;
  private prev: string;
  private nextSeq: number;
  private lines: number;
  private report: ChainReport;
  private readonly tail: AuditTailItem[] = [];
  private queue: { entry: Omit<AuditEntry, 'seq' | 'prev' | 'hash'>; done: (e: AuditEntry | null) => void }[] = [];
  private writing: Promise<void> | null = null;
  private needsNewline: boolean;
  private written = { size: 0, mtimeMs: 0 };
  private checkedAt = new Date().toISOString();
  private closed = false;
  /** Called after entries were written (the event bus's `audit` event). */
  onAppended: () => void = () => {};

  private constructor(
    readonly path: string,
    private readonly log: Log,
    private readonly owner: AuditOwner,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.report = this.verify();
    const created = !existsSync(path);
    this.fd = openSync(path, 'a', 0o600);
    chmodSync(path, 0o600);
    if (created) fsyncDirectory(dirname(path));
    const recovered = this.recoverTornTail();
    this.prev = this.report.tail.prev;
    this.nextSeq = this.report.tail.nextSeq;
    this.lines = this.report.lines;
    this.needsNewline = this.report.tail.unterminated;
    if (recovered) this.appendNow(recovered);
    this.noteWritten();
  }

  /**
   * A crash in the middle of a write (a kill or a power loss before the fsync) can leave the
   * log's last line cut short, with no final `\n`: entries nobody was told were written (their
   * append had not resolved). When that is the only flaw — every line before it verifies — the
   * log is repaired at open, durably, before anything else is written: a last line that is a
   * whole entry missing only its `\n` gets the `\n`; a torn one is cut off (the file truncated
   * to the end of the last whole line). Returns the `audit.recovered` entry to record (how many
   * bytes were dropped, and their SHA-256), or null. Complete lines are never rewritten, and a
   * log broken anywhere else is left exactly as it is (reported, as the header says).
   */
  private recoverTornTail(): AuditRecord | null {
    const r = this.report;
    const t = r.tail;
    if (!t.unterminated || r.break?.kind !== 'truncated' || r.break.line !== r.lines || r.verified !== r.lines - 1) return null;
    const start = t.bytes - t.lastLineBytes;
    let details: AuditDetails;
    if (t.lastLineWhole) {
      writeAllSync(this.fd, Buffer.from('\n'));
      details = { line: r.lines, droppedBytes: 0, completed: true };
    } else {
      const torn = readRange(this.path, start, t.lastLineBytes);
      ftruncateSync(this.fd, start);
      details = { line: r.lines, droppedBytes: torn.length, droppedSha256: sha256(torn), completed: false };
    }
    fsyncSync(this.fd);
    this.tail.length = 0;
    this.report = this.verify();
    const what = details.completed ? 'its last entry lacked the final newline, which was added' : `its last line was cut short (a write interrupted by a crash): ${details.droppedBytes} bytes dropped`;
    this.log.warn({ auditLog: this.path, ...details }, `audit log recovered at open: ${what}; the chain verifies (${this.report.lines} entries)`);
    return { actor: this.owner.name === 'coordinator' ? { kind: 'coordinator' } : { kind: 'edge' }, action: 'audit.recovered', subject: AUDIT_FILE, details };
  }

  /** Writes one entry at once and fsyncs it (the constructor's: nothing is queued yet). */
  private appendNow(r: AuditRecord): void {
    const e = makeEntry(this.nextSeq, this.prev, { at: new Date().toISOString(), actor: r.actor, action: r.action, subject: r.subject, details: r.details ?? {} });
    const line = serializeEntry(e);
    writeAllSync(this.fd, Buffer.from(`${line}\n`, 'utf8'));
    fsyncSync(this.fd);
    this.prev = sha256(line);
    this.nextSeq++;
    this.lines++;
    this.tail.push(e);
  }

  /** Opens (or creates) DIR/audit.jsonl and verifies it; a broken chain is logged, not thrown. */
  static open(dir: string, log: Log, owner: AuditOwner = COORDINATOR_OWNER): AuditLog {
    const a = new AuditLog(join(dir, AUDIT_FILE), log, owner);
    const b = a.report.break;
    if (b) log.warn({ auditLog: a.path, brokenAt: b.seq, line: b.line, reason: b.reason }, `AUDIT LOG INTEGRITY BROKEN at seq ${b.seq} (line ${b.line}): ${b.reason}. The ${owner.name} keeps appending to it; run "fedmed audit verify ${owner.dirFlag} ${dir}", then archive the file (move it away) to start a new chain`);
    return a;
  }

  /** The last entry written (after everything queued so far is on disk, if awaited after flush()). */
  head(): ChainHead {
    const last = this.lastEntry();
    return last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS };
  }

  /** Queues an entry (stamped now); resolves once it is on disk (null if the write failed: logged). */
  append(r: AuditRecord): Promise<AuditEntry | null> {
    if (this.closed) return Promise.resolve(null); // (after close(): nothing more is written)
    return new Promise((done) => {
      this.queue.push({ entry: { at: new Date().toISOString(), actor: r.actor, action: r.action, subject: r.subject, details: r.details ?? {} }, done });
      this.writing ??= this.drain();
    });
  }

  /** Resolves once everything queued so far is written. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  /** Re-reads the chain from disk: its verification, the tail and where the next entry goes. */
  private reloadFromDisk(): void {
    this.tail.length = 0;
    this.report = this.verify();
    this.lines = this.report.lines;
    this.prev = this.report.tail.prev;
    this.nextSeq = this.report.tail.nextSeq;
    this.needsNewline = this.report.tail.unterminated;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await promisify(close)(this.fd);
  }

  integrity(): AuditIntegrity {
    const r = this.report;
    const b = r.break;
    const head = b ? r.head : (this.lastEntry()?.hash ?? GENESIS);
    const base = { entries: this.lines, head, checkedAt: this.checkedAt };
    if (!b) return { ok: true, ...base, message: `${this.lines} entries; the hash chain verifies (head ${head.slice(0, 16)}…)` };
    return { ok: false, ...base, brokenAt: b.seq, line: b.line, reason: b.reason, message: `BROKEN at seq ${b.seq} (line ${b.line}): ${b.reason}. ${r.verified} entries before it verify; archive the file once it has been examined` };
  }

  /** The last `limit` lines, oldest first. */
  entries(limit: number): AuditTailItem[] {
    return this.tail.slice(-limit);
  }

  /** Re-verifies the file if something other than this process changed it since the last write. */
  async recheck(): Promise<void> {
    await this.flush();
    let s;
    try {
      s = statSync(this.path);
    } catch {
      s = { size: -1, mtimeMs: -1 };
    }
    if (s.size === this.written.size && s.mtimeMs === this.written.mtimeMs) return;
    const was = this.report.ok;
    this.reloadFromDisk();
    this.noteWritten();
    const b = this.report.break;
    if (b && was) this.log.warn({ auditLog: this.path, brokenAt: b.seq, line: b.line, reason: b.reason }, `AUDIT LOG CHANGED BEHIND THE ${this.owner.name.toUpperCase()}'S BACK: integrity broken at seq ${b.seq} (line ${b.line}): ${b.reason}`);
  }

  private verify(): ChainReport {
    this.checkedAt = new Date().toISOString();
    return verifyChain(this.path, (entry, line, text) => {
      this.tail.push(entry ?? { line, unparseable: text.slice(0, 200) });
      if (this.tail.length > AUDIT_TAIL * 1.5) this.tail.splice(0, this.tail.length - AUDIT_TAIL);
    });
  }

  private lastEntry(): AuditEntry | undefined {
    const last = this.tail[this.tail.length - 1];
    return last && 'hash' in last ? last : undefined;
  }

  private noteWritten(): void {
    const s = fstatSync(this.fd);
    this.written = { size: s.size, mtimeMs: s.mtimeMs };
  }

  private async drain(): Promise<void> {
    // (a macrotask first: entries recorded in the same tick go out in one write and one fsync)
    await new Promise((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const entries: AuditEntry[] = [];
      let prev = this.prev;
      let seq = this.nextSeq;
      for (const q of batch) {
        const e = makeEntry(seq++, prev, q.entry);
        entries.push(e);
        prev = sha256(serializeEntry(e));
      }
      const text = (this.needsNewline ? '\n' : '') + entries.map((e) => `${serializeEntry(e)}\n`).join('');
      try {
        const bytes = Buffer.from(text, 'utf8');
        let off = 0;
        while (off < bytes.length) off += await writeAsync(this.fd, bytes, off, bytes.length - off);
        await fsyncAsync(this.fd);
        this.needsNewline = false;
        this.prev = prev;
        this.nextSeq = seq;
        this.lines += entries.length;
        for (const e of entries) this.tail.push(e);
        if (this.tail.length > AUDIT_TAIL * 1.5) this.tail.splice(0, this.tail.length - AUDIT_TAIL);
        this.noteWritten();
        for (let i = 0; i < batch.length; i++) batch[i].done(entries[i]);
      } catch (err) {
        this.log.error({ err: (err as Error).message, auditLog: this.path, lost: batch.map((q) => q.entry.action) }, 'could not write to the audit log (disk full? permissions?): these entries are lost');
        // A partial write leaves a cut-short line: start again from what is on disk.
        this.reloadFromDisk();
        for (const q of batch) q.done(null);
      }
    }
    this.writing = null;
    this.onAppended();
  }
}

function writeAllSync(fd: number, bytes: Buffer): void {
  for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, bytes.length - off);
}

/** `length` bytes of a file from `position`. */
function readRange(path: string, position: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const out = Buffer.alloc(length);
    let n = 0;
    while (n < length) {
      const got = readSync(fd, out, n, length - n, position + n);
      if (got === 0) break;
      n += got;
    }
    return out.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

const writeAsync = (fd: number, b: Buffer, off: number, len: number): Promise<number> => new Promise((resolve, reject) => write(fd, b, off, len, null, (err, n) => (err ? reject(err) : resolve(n))));
const fsyncAsync = promisify(fsync);

/** Makes the new file's directory entry durable (skipped where directories cannot be fsynced). */
function fsyncDirectory(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    // (Windows, some network file systems)
  }
}
