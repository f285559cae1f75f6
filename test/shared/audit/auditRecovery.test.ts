/**
 * Crash recovery of the audit log (issue 19, item 2): a write cut short by a crash (SIGKILL,
 * power loss before the fsync) leaves the last line torn, without its `\n`. At the next open,
 * when everything before it verifies, the torn tail is cut off — durably — and an
 * `audit.recovered` entry says which line, how many bytes were dropped and their SHA-256; a
 * last line that is a whole entry lacking only its `\n` is completed, not dropped. Complete
 * entries are never rewritten, and a log broken anywhere else is left as it is.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, verifyChain, type AuditEntry } from '../../../shared/audit/auditChain.js';
import { AuditLog, EDGE_OWNER } from '../../../shared/audit/auditLog.js';
import { makeTempDir } from '../../helpers/paths.js';

const edge = { kind: 'edge' } as const;

describe('audit log crash recovery: a torn last line', () => {
  const t = makeTempDir();
  after(() => t.cleanup());

  async function logWith(dir: string, n: number): Promise<string> {
    const log = AuditLog.open(dir, { warn: () => {}, error: () => {} }, EDGE_OWNER);
    for (let i = 0; i < n; i++) await log.append({ actor: edge, action: 'test.appended', subject: `s${i}` });
    await log.close();
    return join(dir, 'audit.jsonl');
  }

  it('a torn last line is cut off at open and recorded as audit.recovered; the chain verifies and goes on', async () => {
    const dir = join(t.dir, 'torn');
    const file = await logWith(dir, 3);
    const before = readFileSync(file);
    const torn = '{"seq":4,"at":"2026-12-02T06:5'; // (a write cut short mid-line)
    appendFileSync(file, torn);
    assert.equal(verifyChain(file).break?.kind, 'truncated', 'verify names the torn line until the owner reopens the log');
    const warned: string[] = [];
    const log = AuditLog.open(dir, { warn: (_o, msg) => warned.push(msg), error: () => {} }, EDGE_OWNER);
    assert.match(warned.join('\n'), /recovered at open: its last line was cut short .*: 30 bytes dropped/);
    assert.doesNotMatch(warned.join('\n'), /INTEGRITY BROKEN/);
    assert.equal(log.integrity().ok, true, log.integrity().message);
    const next = await log.append({ actor: edge, action: 'test.after', subject: 'z' });
    await log.close();
    // The three complete entries are byte-identical; then the record of the recovery, then the new entry.
    const after = readFileSync(file);
    assert.deepEqual(after.subarray(0, before.length), before);
    const lines = after.toString('utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditEntry);
    assert.deepEqual(
      lines.map((e) => [e.seq, e.action]),
      [
        [1, 'test.appended'],
        [2, 'test.appended'],
        [3, 'test.appended'],
        [4, 'audit.recovered'],
        [5, 'test.after'],
      ],
    );
    assert.deepEqual(lines[3].actor, edge);
    assert.deepEqual(lines[3].details, { line: 4, droppedBytes: torn.length, droppedSha256: sha256(torn), completed: false });
    assert.equal(next!.seq, 5);
    const r = verifyChain(file);
    assert.deepEqual([r.ok, r.lines, r.head], [true, 5, next!.hash]);
  });

  it('a batch torn after its first lines keeps the whole lines and drops only the torn one', async () => {
    const dir = join(t.dir, 'batch');
    const file = await logWith(dir, 5);
    const text = readFileSync(file, 'utf8');
    const lines = text.trimEnd().split('\n');
    // Lines 4 and 5 were one write: the crash left line 4 whole and 10 bytes of line 5.
    truncateSync(file, Buffer.byteLength(lines.slice(0, 4).join('\n')) + 1 + 10);
    const log = AuditLog.open(dir, { warn: () => {}, error: () => {} }, EDGE_OWNER);
    assert.equal(log.integrity().ok, true);
    await log.close();
    const after = readFileSync(file, 'utf8').trimEnd().split('\n');
    assert.deepEqual(after.slice(0, 4), lines.slice(0, 4));
    const rec = JSON.parse(after[4]) as AuditEntry;
    assert.deepEqual([rec.seq, rec.action, rec.details.line, rec.details.droppedBytes], [5, 'audit.recovered', 5, 10]);
    assert.equal(verifyChain(file).ok, true);
  });

  it('a last entry that lacks only its newline is completed, not dropped', async () => {
    const dir = join(t.dir, 'whole');
    const file = await logWith(dir, 3);
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.slice(0, -1), { mode: 0o600 }); // (the crash came between the entry and its "\n")
    assert.equal(verifyChain(file).ok, false);
    const log = AuditLog.open(dir, { warn: () => {}, error: () => {} }, EDGE_OWNER);
    assert.equal(log.integrity().ok, true);
    await log.close();
    const after = readFileSync(file, 'utf8');
    assert.ok(after.startsWith(text), 'the three entries, byte for byte, with the newline');
    const rec = JSON.parse(after.slice(text.length).trimEnd()) as AuditEntry;
    assert.deepEqual([rec.seq, rec.action, rec.details], [4, 'audit.recovered', { line: 3, droppedBytes: 0, completed: true }]);
    assert.equal(verifyChain(file).ok, true);
  });

  it('a torn first line of a new log is dropped too', async () => {
    const dir = join(t.dir, 'first');
    const file = join(dir, 'audit.jsonl');
    await logWith(dir, 0);
    appendFileSync(file, '{"seq":1,"at"');
    const log = AuditLog.open(dir, { warn: () => {}, error: () => {} }, EDGE_OWNER);
    await log.close();
    const r = verifyChain(file);
    assert.deepEqual([r.ok, r.lines], [true, 1]);
    assert.equal((JSON.parse(readFileSync(file, 'utf8')) as AuditEntry).action, 'audit.recovered');
  });

  it('a torn line that is not the last one, or after an earlier break, is never repaired', async () => {
    const dir = join(t.dir, 'mid');
    const file = await logWith(dir, 4);
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    // Line 2 cut short but followed by more lines: an edit, not a crash.
    const edited = [lines[0], lines[1].slice(0, 20), ...lines.slice(2)].join('\n') + '\n';
    writeFileSync(file, edited, { mode: 0o600 });
    let log = AuditLog.open(dir, { warn: () => {}, error: () => {} }, EDGE_OWNER);
    assert.deepEqual([log.integrity().ok, log.integrity().brokenAt], [false, 2]);
    await log.close();
    assert.equal(readFileSync(file, 'utf8'), edited);
    // A torn last line in a log broken elsewhere: kept as it is, too.
    appendFileSync(file, '{"seq":5,');
    log = AuditLog.open(dir, { warn: () => {}, error: () => {} }, EDGE_OWNER);
    assert.deepEqual([log.integrity().ok, log.integrity().brokenAt], [false, 2]);
    await log.close();
    assert.equal(readFileSync(file, 'utf8'), `${edited}{"seq":5,`);
  });
});
