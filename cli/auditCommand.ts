/**
 * `fedmed audit verify|show|heads|cross-check`: the hash-chained audit logs
 * (shared/audit/auditChain.ts) of the coordinator (DATA_DIR/audit.jsonl, --data-dir) and of an
 * edge (STATE_DIR/audit.jsonl, --state-dir), read offline — the process may be running or not.
 *   verify       checks the whole chain: exit 0 with the entry count and the head hash; exit 1
 *                naming the first bad line (seq, line number, why: bad JSON, hash mismatch, prev
 *                mismatch, seq gap, truncated last line, …)
 *   show         prints entries (all, or from --since SEQ|ISO-TIME, the last --limit N)
 *   heads        the other side's signed chain heads this log holds (an edge: the coordinator's;
 *                the coordinator: the sites'), to hand to the other side's cross-check
 *   cross-check  checks a log against the heads the other side holds for it (--data-dir and
 *                --state-dir together check both directions; one of them with --heads FILE checks
 *                that log against an exported heads file): exit 1 if its owner rewrote or cut
 *                history it had signed
 */
import type { KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../shared/errors.js';
import { verifyChain, type AuditEntry } from '../shared/audit/auditChain.js';
import { AUDIT_FILE } from '../shared/audit/auditLog.js';
import { keyId } from '../shared/audit/auditHead.js';
import { crossCheck, heldHeads, parseHeldHeads, type CrossCheckReport, type HeldHead } from '../shared/audit/auditCrossCheck.js';
import { loadIdentity } from '../shared/secure/identity.js';
import { intOption } from './parseNumber.js';

interface DirFlags {
  dataDir?: string;
  stateDir?: string;
}

/** The audit log named by exactly one of --data-dir (coordinator) and --state-dir (edge). */
function logOf(flags: DirFlags): { file: string; side: 'coordinator' | 'edge'; dir: string } {
  if ((flags.dataDir === undefined) === (flags.stateDir === undefined)) throw new UsageError("give --data-dir DIR (the coordinator's data dir) or --state-dir DIR (an edge's state dir)");
  const side = flags.dataDir !== undefined ? 'coordinator' : 'edge';
  const dir = (flags.dataDir ?? flags.stateDir)!;
  const file = join(dir, AUDIT_FILE);
  if (!existsSync(file)) throw new UsageError(side === 'coordinator' ? `no audit log at ${file} (is --data-dir the coordinator's data dir? the log is created at the coordinator's first start)` : `no audit log at ${file} (is --state-dir an edge's state dir? the log is created at enrolment)`);
  return { file, side, dir };
}

const dirOptions = (c: Command): Command => c.option('--data-dir <dir>', "the coordinator's data dir").option('--state-dir <dir>', "an edge's state dir");

export function auditCommand(): Command {
  const cmd = new Command('audit').description('the tamper-evident audit logs of the coordinator (DATA_DIR/audit.jsonl) and of the edges (STATE_DIR/audit.jsonl)');
  dirOptions(cmd.command('verify').description('verify the whole hash chain; exit 1 naming the first bad line'))
    .option('--json', 'print JSON')
    .action((flags: DirFlags & { json?: boolean }) => {
      const { file } = logOf(flags);
      const r = verifyChain(file);
      const out = { ok: r.ok, file, entries: r.lines, verified: r.verified, head: r.head, ...(r.break ? { brokenAt: r.break.seq, line: r.break.line, kind: r.break.kind, reason: r.break.reason } : {}) };
      if (flags.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else if (r.ok) console.log(`audit log OK: ${r.lines} entries, hash chain verified; head ${r.head}`);
      else process.stderr.write(`audit log BROKEN at seq ${r.break!.seq}, line ${r.break!.line} of ${file}: ${r.break!.kind.replace('_', ' ')}: ${r.break!.reason}\n(${r.verified} entries before it verify; head of the verified part ${r.head})\n`);
      if (!r.ok) process.exitCode = 1;
    });
  dirOptions(cmd.command('show').description('print audit entries (oldest first)'))
    .option('--since <seq|time>', 'entries from this seq or ISO time on')
    .option('--limit <n>', 'only the last N of them', intOption('--limit', 1))
    .option('--json', 'print one JSON entry per line')
    .action((flags: DirFlags & { since?: string; limit?: number; json?: boolean }) => {
      const { file } = logOf(flags);
      const since = flags.since;
      const sinceSeq = since !== undefined && /^\d+$/.test(since) ? Number(since) : null;
      const sinceTime = since !== undefined && sinceSeq === null ? Date.parse(since) : null;
      if (sinceTime !== null && Number.isNaN(sinceTime)) throw new UsageError(`--since ${since}: give a seq (a number) or an ISO time such as 2026-01-31T00:00:00Z`);
      const keep: (AuditEntry | { line: number; unparseable: string })[] = [];
      const limit = flags.limit ?? Infinity;
      const r = verifyChain(file, (e, line, text) => {
        if (!e) return void keep.push({ line, unparseable: text.slice(0, 200) });
        if (sinceSeq !== null && e.seq < sinceSeq) return;
        if (sinceTime !== null && Date.parse(e.at) < sinceTime) return;
        keep.push(e);
        if (keep.length > limit) keep.shift();
      });
      for (const e of keep) {
        if (flags.json) process.stdout.write(`${JSON.stringify(e)}\n`);
        else if ('unparseable' in e) console.log(`line ${e.line}: (not an entry) ${e.unparseable}`);
        else console.log(`${String(e.seq).padStart(6)} ${e.at} ${actorText(e.actor).padEnd(28)} ${e.action.padEnd(28)} ${e.subject} ${Object.keys(e.details).length ? JSON.stringify(e.details) : ''}`.trimEnd());
      }
      if (!r.ok) {
        process.stderr.write(`warning: the hash chain is BROKEN at seq ${r.break!.seq} (line ${r.break!.line}): ${r.break!.reason} (see "fedmed audit verify")\n`);
        process.exitCode = 1;
      }
    });
  dirOptions(cmd.command('heads').description("the other side's signed chain heads held in this log (an edge: the coordinator's; the coordinator: the sites')"))
    .option('--site <name>', "on the coordinator: only this site's heads")
    .option('--json', 'print a JSON array (the input of "fedmed audit cross-check --heads FILE")')
    .action((flags: DirFlags & { site?: string; json?: boolean }) => {
      const { file } = logOf(flags);
      const heads = heldHeads(file, (s) => flags.site === undefined || s === `site:${flags.site}`);
      if (flags.json) return void process.stdout.write(`${JSON.stringify(heads)}\n`);
      for (const h of heads) console.log(`${h.signer.padEnd(24)} seq ${String(h.seq).padStart(6)} ${h.hash} signed ${h.at} (recorded as entry ${h.recordedSeq})`);
      if (heads.length === 0) console.log('no signed heads of the other side in this log yet');
    });
  cmd
    .command('cross-check')
    .description("check a log against the signed heads the other side holds: exit 1 if its owner rewrote or cut history it had signed")
    .option('--data-dir <dir>', "the coordinator's data dir")
    .option('--state-dir <dir>', "an edge's state dir")
    .option('--heads <file>', 'heads exported by the other side ("fedmed audit heads --json"), instead of giving both dirs')
    .option('--json', 'print JSON')
    .action((flags: DirFlags & { heads?: string; json?: boolean }) => {
      const checks: { log: string; against: string; report: CrossCheckReport }[] = [];
      const coordinator = flags.dataDir !== undefined ? logOf({ dataDir: flags.dataDir }) : null;
      const edge = flags.stateDir !== undefined ? logOf({ stateDir: flags.stateDir }) : null;
      const site = edge ? siteName(edge.dir) : null;
      const fromFile = flags.heads !== undefined ? readHeads(flags.heads) : null;
      if (!coordinator && !edge) throw new UsageError('give --data-dir (the coordinator) and --state-dir (an edge), or one of them with --heads FILE');
      if (fromFile && coordinator && edge) throw new UsageError('give --heads with one of --data-dir or --state-dir, not both');
      if (!fromFile && !(coordinator && edge)) throw new UsageError('give both --data-dir and --state-dir, or --heads FILE (exported on the other side with "fedmed audit heads --json")');
      if (coordinator) {
        const heads = fromFile ? fromFile.filter((h) => h.signer === 'coordinator') : heldHeads(edge!.file, (s) => s === 'coordinator');
        checks.push({ log: coordinator.file, against: fromFile ? flags.heads! : edge!.file, report: crossCheck(coordinator.file, heads, coordinatorKeys(coordinator.dir)) });
      }
      if (edge) {
        const heads = fromFile ? fromFile.filter((h) => h.signer === `site:${site}`) : heldHeads(coordinator!.file, (s) => s === `site:${site}`);
        checks.push({ log: edge.file, against: fromFile ? flags.heads! : coordinator!.file, report: crossCheck(edge.file, heads, siteKeys(edge.dir)) });
      }
      const ok = checks.every((c) => c.report.ok);
      if (flags.json) process.stdout.write(`${JSON.stringify({ ok, checks })}\n`);
      else {
        for (const c of checks) {
          const r = c.report;
          const what = `${c.log} against ${r.heads} signed heads held in ${c.against}`;
          if (r.ok) console.log(`cross-check OK: ${what}: all ${r.agreeing} agree (${r.signatures.valid} signatures verified${r.signatures.unverified ? `, ${r.signatures.unverified} of an unknown key` : ''})`);
          else {
            process.stderr.write(`cross-check FAILED: ${what}: ${r.disagreements.length} disagree${r.signatures.invalid ? `, ${r.signatures.invalid} with a signature that does not verify` : ''}\n`);
            for (const d of r.disagreements.slice(0, 10)) process.stderr.write(`  seq ${d.seq}: ${d.reason}\n`);
          }
          if (!r.chain.ok) process.stderr.write(`  (the log's own chain is also broken at seq ${r.chain.break!.seq}: see "fedmed audit verify")\n`);
        }
      }
      if (!ok) process.exitCode = 1;
    });
  return cmd;
}

function readHeads(file: string): HeldHead[] {
  try {
    return parseHeldHeads(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`--heads ${file}: ${(err as Error).message}`);
  }
}

/** The coordinator's public keys (current, previous after a rotation, next) by key id. */
function coordinatorKeys(dataDir: string): Map<string, KeyObject> {
  return keysFrom(['coordinator-key.pem', 'coordinator-key.old.pem', 'coordinator-key.next.pem'].map((f) => join(dataDir, f)));
}

function siteKeys(stateDir: string): Map<string, KeyObject> {
  return keysFrom([join(stateDir, 'site-key.pem')]);
}

function keysFrom(files: string[]): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  for (const f of files) {
    if (!existsSync(f)) continue;
    try {
      const id = loadIdentity(f);
      keys.set(keyId(id.publicKeyB64), id.publicKey);
    } catch {
      // (an unreadable key: heads signed with it are reported as unverified)
    }
  }
  return keys;
}

function siteName(stateDir: string): string {
  try {
    const c = JSON.parse(readFileSync(join(stateDir, 'site.json'), 'utf8')) as { site?: unknown };
    if (typeof c.site === 'string') return c.site;
  } catch {
    // below
  }
  throw new UsageError(`${stateDir}: no site.json naming the site (is --state-dir an enrolled edge's state dir?)`);
}

function actorText(a: AuditEntry['actor']): string {
  switch (a.kind) {
    case 'token':
      return `token ${a.id.slice(0, 8)} (${a.role})`;
    case 'site':
      return `site ${a.site}`;
    default:
      return a.kind;
  }
}
