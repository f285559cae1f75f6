/**
 * The format of the hash-chained audit log — the coordinator's DATA_DIR/audit.jsonl and every
 * edge's STATE_DIR/audit.jsonl — and its verification, with no dependency on either side (the
 * CLI's `fedmed audit verify` uses it offline).
 *
 * One entry per line, UTF-8 JSON, `\n`-terminated, written in this field order:
 *   {"seq":1,"at":"2026-…Z","actor":{…},"action":"site.added","subject":"st-olav","details":{…},"prev":"…","hash":"…"}
 *   seq      1, 2, 3, … (no gaps)
 *   at       ISO 8601 time of the change
 *   actor    who made the change. On the coordinator: {kind:'token', id, role} (an API token),
 *            {kind:'site', site} (what a site did or reported), {kind:'coordinator'} (the coordinator
 *            itself). On an edge: {kind:'edge'} (the edge itself, by its site policy),
 *            {kind:'coordinator'} (what the coordinator sent or asked), {kind:'operator'} (the
 *            site's operator, by hand: enrolment, approvals, a rollback)
 *   action   what changed, `<thing>.<verb>` (site.added, token.created, round.completed, …)
 *   subject  the identifier of the thing that changed (site name, token id, experiment id, version id)
 *   details  small JSON object of identifiers, counts and hashes — never secrets, keys or patient data
 *   prev     hex SHA-256 of the previous line's exact bytes (without its `\n`); GENESIS for the first
 *   hash     hex SHA-256 of the canonical JSON (keys sorted, no whitespace) of the entry without `hash`
 * A line must be byte-identical to the serialisation of its entry (serializeEntry), so any change
 * to a line's bytes is caught at that line, and any deletion, insertion or reordering at the line
 * after it (prev, seq). The chain head is the last entry's `hash`.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';

export const GENESIS = '0'.repeat(64);

export type AuditActor = { kind: 'token'; id: string; role: string } | { kind: 'site'; site: string } | { kind: 'coordinator' } | { kind: 'edge' } | { kind: 'operator' };
const ACTOR_KINDS = ['token', 'site', 'coordinator', 'edge', 'operator'];
export type AuditDetails = Record<string, string | number | boolean | null | string[]>;

export interface AuditEntry {
  seq: number;
  at: string;
  actor: AuditActor;
  action: string;
  subject: string;
  details: AuditDetails;
  prev: string;
  hash: string;
}

/** JSON with object keys sorted at every level and no whitespace. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x === undefined ? null : x)).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

export const sha256 = (bytes: string | Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** The `hash` of an entry: SHA-256 of the canonical JSON of everything but `hash`. */
export function entryHash(e: Omit<AuditEntry, 'hash'>): string {
  const { seq, at, actor, action, subject, details, prev } = e;
  return sha256(canonicalJson({ seq, at, actor, action, subject, details, prev }));
}

/** The line of an entry (without `\n`), in the documented field order. */
export function serializeEntry(e: AuditEntry): string {
  return JSON.stringify({ seq: e.seq, at: e.at, actor: e.actor, action: e.action, subject: e.subject, details: e.details, prev: e.prev, hash: e.hash });
}

/** Builds the next entry of a chain whose last line hashes to `prev`. */
export function makeEntry(seq: number, prev: string, e: Pick<AuditEntry, 'at' | 'actor' | 'action' | 'subject' | 'details'>): AuditEntry {
  const body = { seq, at: e.at, actor: e.actor, action: e.action, subject: e.subject, details: e.details, prev };
  return { ...body, hash: entryHash(body) };
}

export type BreakKind = 'bad_json' | 'bad_entry' | 'not_canonical' | 'hash_mismatch' | 'prev_mismatch' | 'seq_gap' | 'truncated';

export interface ChainBreak {
  /** 1-based line number of the first bad line. */
  line: number;
  /** The seq that line should have (the chain's next seq). */
  seq: number;
  kind: BreakKind;
  reason: string;
}

export interface ChainReport {
  ok: boolean;
  /** Lines in the file (a truncated last line counts). */
  lines: number;
  /** Entries that verified (the valid prefix). */
  verified: number;
  /** The last valid entry's hash (GENESIS for an empty log): the head of the verified chain. */
  head: string;
  break?: ChainBreak;
  /**
   * Where to continue: the last line's bytes' hash, the next seq, whether the file lacks its
   * final `\n`; the last line's length in bytes, and, for a last line without its `\n`, whether
   * it is nevertheless a whole entry that continues the verified chain (only the `\n` is missing).
   */
  tail: { prev: string; nextSeq: number; lastLine: string | null; unterminated: boolean; bytes: number; lastLineBytes: number; lastLineWhole: boolean };
}

const ENTRY_KEYS = ['seq', 'at', 'actor', 'action', 'subject', 'details', 'prev', 'hash'];

/** Why a parsed line is not a well-formed entry, or null. */
function malformed(v: unknown): string | null {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return 'not a JSON object';
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  const extra = keys.filter((k) => !ENTRY_KEYS.includes(k));
  const missing = ENTRY_KEYS.filter((k) => !(k in o));
  if (extra.length || missing.length) return `fields ${missing.length ? `missing: ${missing.join(', ')}` : ''}${extra.length ? ` unexpected: ${extra.join(', ')}` : ''}`.trim();
  if (!Number.isSafeInteger(o.seq)) return 'seq is not an integer';
  if (typeof o.at !== 'string' || Number.isNaN(Date.parse(o.at))) return 'at is not an ISO time';
  const a = o.actor as Record<string, unknown> | null;
  if (!a || typeof a !== 'object' || !ACTOR_KINDS.includes(a.kind as string)) return `actor is not {kind: ${ACTOR_KINDS.join('|')}}`;
  if (typeof o.action !== 'string' || typeof o.subject !== 'string') return 'action or subject is not a string';
  if (!o.details || typeof o.details !== 'object' || Array.isArray(o.details)) return 'details is not an object';
  if (typeof o.prev !== 'string' || !/^[0-9a-f]{64}$/.test(o.prev) || typeof o.hash !== 'string' || !/^[0-9a-f]{64}$/.test(o.hash)) return 'prev or hash is not 64 hex digits';
  return null;
}

/**
 * The lines of a file as exact byte strings (decoded as UTF-8), read in chunks (a year's log
 * need not fit in memory); the last one flagged if it has no terminating `\n`.
 */
export function* fileLines(path: string, chunkBytes = 1 << 20): Generator<{ text: string; bytes: Buffer; terminated: boolean }> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    const buf = Buffer.alloc(chunkBytes);
    let carry: Buffer[] = [];
    for (;;) {
      const n = readSync(fd, buf, 0, chunkBytes, null);
      if (n === 0) break;
      let start = 0;
      const chunk = buf.subarray(0, n);
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, start)) {
        const bytes = Buffer.concat([...carry, chunk.subarray(start, i)]);
        carry = [];
        start = i + 1;
        yield { text: bytes.toString('utf8'), bytes, terminated: true };
      }
      if (start < n) carry.push(Buffer.from(chunk.subarray(start)));
    }
    if (carry.length) {
      const bytes = Buffer.concat(carry);
      yield { text: bytes.toString('utf8'), bytes, terminated: false };
    }
  } finally {
    closeSync(fd);
  }
}

/** Why a well-formed entry on line text `text` does not continue a chain at `expectSeq` after a line hashing to `prevHash`, or null. */
function chainProblem(entry: AuditEntry, text: string, expectSeq: number, prevHash: string): { kind: BreakKind; reason: string } | null {
  if (entry.seq !== expectSeq) return { kind: 'seq_gap', reason: `seq ${entry.seq} where ${expectSeq} was expected (an entry was deleted, inserted or moved)` };
  if (entry.prev !== prevHash) return { kind: 'prev_mismatch', reason: `prev ${entry.prev.slice(0, 16)}… is not the hash of the previous line (${prevHash.slice(0, 16)}…): the previous line was changed, or lines were deleted, inserted or reordered` };
  if (entryHash(entry) !== entry.hash) return { kind: 'hash_mismatch', reason: 'the entry does not match its hash: a field of this line was changed' };
  if (serializeEntry(entry) !== text) return { kind: 'not_canonical', reason: 'the line is not in the form the audit log writes (its bytes were edited)' };
  return null;
}

/**
 * Verifies a whole log. `onEntry` sees every line in order (the parsed entry, or null for a line
 * that does not parse), e.g. to keep the last ones.
 */
export function verifyChain(path: string, onEntry?: (entry: AuditEntry | null, line: number, text: string) => void): ChainReport {
  let prevHash = GENESIS; // the previous line's bytes' hash
  let head = GENESIS;
  let expectSeq = 1;
  let lines = 0;
  let verified = 0;
  let maxSeq = 0;
  let bytes = 0;
  let lastLine: string | null = null;
  let lastLineBytes = 0;
  let lastLineWhole = false;
  let unterminated = false;
  let brk: ChainBreak | undefined;
  for (const l of fileLines(path)) {
    lines++;
    bytes += l.bytes.length + (l.terminated ? 1 : 0);
    lastLine = l.text;
    lastLineBytes = l.bytes.length;
    unterminated = !l.terminated;
    let parsed: unknown;
    let entry: AuditEntry | null = null;
    let bad: { kind: BreakKind; reason: string } | null = null;
    try {
      parsed = JSON.parse(l.text);
      const why = malformed(parsed);
      if (why) bad = { kind: 'bad_entry', reason: `not an audit entry: ${why}` };
      else entry = parsed as AuditEntry;
    } catch {
      bad = { kind: l.terminated ? 'bad_json' : 'truncated', reason: l.terminated ? 'not valid JSON' : 'the last line is cut short (not valid JSON, no final newline): a write was interrupted or the file was truncated' };
    }
    if (entry) maxSeq = Math.max(maxSeq, entry.seq);
    if (!bad && !l.terminated) {
      bad = { kind: 'truncated', reason: 'the last line has no final newline: a write was interrupted or the file was truncated' };
      // (a whole entry that only lacks its newline: the writer may complete it, see auditLog.ts)
      lastLineWhole = !brk && entry !== null && chainProblem(entry, l.text, expectSeq, prevHash) === null;
    }
    if (!bad && entry) bad = chainProblem(entry, l.text, expectSeq, prevHash);
    if (!brk) {
      if (bad) brk = { line: lines, seq: expectSeq, ...bad };
      else {
        verified++;
        head = entry!.hash;
        expectSeq++;
      }
    }
    prevHash = sha256(l.bytes);
    onEntry?.(entry, lines, l.text);
  }
  return { ok: !brk, lines, verified, head, ...(brk ? { break: brk } : {}), tail: { prev: prevHash, nextSeq: Math.max(maxSeq, lines, expectSeq - 1) + 1, lastLine, unterminated, bytes, lastLineBytes, lastLineWhole } };
}

/** Caps strings and lists, so an entry's details stay small whatever its source passes. */
export function cappedDetails(d: AuditDetails): AuditDetails {
  const out: AuditDetails = {};
  for (const [k, v] of Object.entries(d)) {
    if (v === undefined) continue;
    out[k] = typeof v === 'string' ? v.slice(0, 300) : Array.isArray(v) ? v.slice(0, 100).map((x) => String(x).slice(0, 128)) : v;
  }
  return out;
}
