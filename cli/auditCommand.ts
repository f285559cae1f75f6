/**
 * `fedmed audit verify|show`: the coordinator's hash-chained audit log (DATA_DIR/audit.jsonl,
 * coordinator/audit/auditChain.ts), read offline — the coordinator may be running or not.
 *   verify  checks the whole chain: exit 0 with the entry count and the head hash; exit 1 naming
 *           the first bad line (seq, line number, why: bad JSON, hash mismatch, prev mismatch,
 *           seq gap, truncated last line, …)
 *   show    prints entries (all, or from --since SEQ|ISO-TIME, the last --limit N)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { UsageError } from '../shared/errors.js';
import { verifyChain, type AuditEntry } from '../coordinator/audit/auditChain.js';
import { AUDIT_FILE } from '../coordinator/audit/auditLog.js';
import { intOption } from './parseNumber.js';

function logFile(dataDir: string): string {
  const file = join(dataDir, AUDIT_FILE);
  if (!existsSync(file)) throw new UsageError(`no audit log at ${file} (is --data-dir the coordinator's data dir? the log is created at the coordinator's first start)`);
  return file;
}

export function auditCommand(): Command {
  const cmd = new Command('audit').description("the coordinator's tamper-evident audit log (DATA_DIR/audit.jsonl)");
  cmd
    .command('verify')
    .description('verify the whole hash chain; exit 1 naming the first bad line')
    .requiredOption('--data-dir <dir>', "the coordinator's data dir")
    .option('--json', 'print JSON')
    .action((flags: { dataDir: string; json?: boolean }) => {
      const file = logFile(flags.dataDir);
      const r = verifyChain(file);
      const out = { ok: r.ok, file, entries: r.lines, verified: r.verified, head: r.head, ...(r.break ? { brokenAt: r.break.seq, line: r.break.line, kind: r.break.kind, reason: r.break.reason } : {}) };
      if (flags.json) process.stdout.write(`${JSON.stringify(out)}\n`);
      else if (r.ok) console.log(`audit log OK: ${r.lines} entries, hash chain verified; head ${r.head}`);
      else process.stderr.write(`audit log BROKEN at seq ${r.break!.seq}, line ${r.break!.line} of ${file}: ${r.break!.kind.replace('_', ' ')}: ${r.break!.reason}\n(${r.verified} entries before it verify; head of the verified part ${r.head})\n`);
      if (!r.ok) process.exitCode = 1;
    });
  cmd
    .command('show')
    .description('print audit entries (oldest first)')
    .requiredOption('--data-dir <dir>', "the coordinator's data dir")
    .option('--since <seq|time>', 'entries from this seq or ISO time on')
    .option('--limit <n>', 'only the last N of them', intOption('--limit', 1))
    .option('--json', 'print one JSON entry per line')
    .action((flags: { dataDir: string; since?: string; limit?: number; json?: boolean }) => {
      const file = logFile(flags.dataDir);
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
  return cmd;
}

function actorText(a: AuditEntry['actor']): string {
  return a.kind === 'token' ? `token ${a.id.slice(0, 8)} (${a.role})` : a.kind === 'site' ? `site ${a.site}` : 'coordinator';
}
