/**
 * The audit log in process: concurrent appends form one gap-free chain; a reopened log continues
 * it; a cut-short last line in a log broken elsewhere is reported and the chain goes on after it
 * (a crash's torn tail on an intact log is repaired: test/shared/audit/auditRecovery.test.ts); a file
 * changed behind the log's back is caught at the next check.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalJson, GENESIS, sha256, verifyChain, type AuditEntry } from '../../../shared/audit/auditChain.js';
import { AuditLog } from '../../../shared/audit/auditLog.js';
import { makeTempDir } from '../../helpers/paths.js';

const quiet = { warn: () => {}, error: () => {} };
const coordinator = { kind: 'coordinator' } as const;

describe('audit log (coordinator/audit)', () => {
  const t = makeTempDir();
  after(() => t.cleanup());

  it('canonical JSON sorts keys at every level', () => {
    assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null } }), '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}');
  });

  it('serialises concurrent appends into one chain and continues it after a reopen', async () => {
    const dir = join(t.dir, 'a');
    let log = AuditLog.open(dir, quiet);
    let appended = 0;
    log.onAppended = () => appended++;
    const written = await Promise.all(Array.from({ length: 200 }, (_, i) => log.append({ actor: coordinator, action: 'test.appended', subject: `s${i}`, details: { i } })));
    assert.deepEqual(written.map((e) => e!.seq), Array.from({ length: 200 }, (_, i) => i + 1));
    assert.equal(written[0]!.prev, GENESIS);
    assert.ok(appended >= 1 && appended < 200, 'appends are batched');
    await log.close();
    assert.equal(statSync(join(dir, 'audit.jsonl')).mode & 0o777, 0o600);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    log = AuditLog.open(dir, quiet);
    const next = await log.append({ actor: { kind: 'site', site: 'x' }, action: 'test.more', subject: 'y' });
    assert.equal(next!.seq, 201);
    const lines = readFileSync(join(dir, 'audit.jsonl'), 'utf8').trimEnd().split('\n');
    assert.equal(next!.prev, sha256(lines[199]));
    assert.equal(log.integrity().ok, true);
    assert.equal(log.integrity().head, next!.hash);
    assert.deepEqual(log.entries(2).map((e) => (e as AuditEntry).seq), [200, 201]);
    await log.close();
    const r = verifyChain(join(dir, 'audit.jsonl'));
    assert.deepEqual({ ok: r.ok, lines: r.lines, head: r.head }, { ok: true, lines: 201, head: next!.hash });
  });

  it('a cut-short last line in a log already broken elsewhere is reported, kept, and appended after on a line of its own', async () => {
    const dir = join(t.dir, 'b');
    let log = AuditLog.open(dir, quiet);
    for (let i = 0; i < 3; i++) await log.append({ actor: coordinator, action: 'test.appended', subject: `s${i}` });
    await log.close();
    const file = join(dir, 'audit.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"subject":"s1"', '"subject":"s9"')); // (an edit: line 2 breaks)
    appendFileSync(file, '{"seq":4,"at":"2026-'); // (and a crash mid-write)
    const warned: string[] = [];
    log = AuditLog.open(dir, { warn: (_o, msg) => warned.push(msg), error: () => {} });
    assert.match(warned.join('\n'), /INTEGRITY BROKEN at seq 2 \(line 2\)/);
    assert.deepEqual([log.integrity().ok, log.integrity().brokenAt], [false, 2]);
    const e = await log.append({ actor: coordinator, action: 'test.after', subject: 'z' });
    await log.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    assert.equal(lines[3], '{"seq":4,"at":"2026-'); // (nothing of a broken log is dropped)
    assert.equal(JSON.parse(lines[4]).seq, e!.seq);
    assert.equal(e!.prev, sha256(lines[3]));
    const r = verifyChain(file);
    assert.deepEqual([r.ok, r.break?.line, r.break?.kind], [false, 2, 'hash_mismatch']);
  });

  it('notices a change made behind its back', async () => {
    const dir = join(t.dir, 'c');
    const log = AuditLog.open(dir, quiet);
    for (let i = 0; i < 3; i++) await log.append({ actor: coordinator, action: 'test.appended', subject: `s${i}` });
    await log.recheck();
    assert.equal(log.integrity().ok, true);
    const file = join(dir, 'audit.jsonl');
    writeFileSync(file, readFileSync(file, 'utf8').replace('"subject":"s1"', '"subject":"s9"'));
    await log.recheck();
    assert.deepEqual([log.integrity().ok, log.integrity().brokenAt], [false, 2]);
    await log.close();
  });
});
