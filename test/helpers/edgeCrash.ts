/**
 * Helpers of the edge crash-safety tests (test/edge-client/edgeCrashSafety.e2e.test.ts,
 * edgeLedgerCrashSafety.e2e.test.ts): seeded kill points, a tabular site's data, an edge process
 * whose JSON log is followed line by line, and what a crash must not leave in a state dir.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnCli, type Proc } from './federation.js';
import { runCli } from './runCli.js';

/** A seeded generator (mulberry32): the trials' kill points are the same in every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A tabular site's data: 8 features, a label that depends on them. */
export function writeCsv(path: string, seed: number, n = 200): void {
  const rand = seeded(seed);
  const rows = ['f0,f1,f2,f3,f4,f5,f6,f7,label'];
  for (let i = 0; i < n; i++) {
    const x = Array.from({ length: 8 }, () => rand() * 2 - 1);
    rows.push([...x.map((v) => v.toFixed(4)), x[0] + x[1] - x[2] > 0 ? 1 : 0].join(','));
  }
  writeFileSync(path, `${rows.join('\n')}\n`);
}

export type LogEvent = Record<string, unknown> & { event: string; at: number };

/** An edge process whose JSON log lines are followed as they arrive (a pipe: written synchronously, in order). */
export interface FollowedEdge extends Proc {
  events: LogEvent[];
  /** Resolves with the first event from the `from`-th on (already seen or to come) that matches. */
  next: (match: (e: LogEvent) => boolean, what: string, o?: { timeoutMs?: number; from?: number }) => Promise<LogEvent>;
}

export function startEdge(args: string[]): FollowedEdge {
  const p = spawnCli(args);
  const events: LogEvent[] = [];
  const waiting: { match: (e: LogEvent) => boolean; resolve: (e: LogEvent) => void }[] = [];
  let buffer = '';
  p.child.stdout!.on('data', (d: Buffer) => {
    const at = performance.now();
    buffer += d.toString();
    let end: number;
    while ((end = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      if (!line.startsWith('{"time"')) continue;
      const e = { ...(JSON.parse(line) as Record<string, unknown>), at } as LogEvent;
      events.push(e);
      for (const w of [...waiting]) {
        if (!w.match(e)) continue;
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(e);
      }
    }
  });
  return {
    ...p,
    events,
    next: (match, what, { timeoutMs = 60_000, from = 0 } = {}) => {
      const seen = events.slice(from).find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; edge output:\n${p.output().slice(-4000)}`)), timeoutMs);
        waiting.push({ match, resolve: (e) => (clearTimeout(timer), resolve(e)) });
      });
    },
  };
}

export async function killProc(p: Proc): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

/** Files in the state dir a crash must not leave behind: temporary files of atomic writes, params without a manifest, half a partial download. */
export function leftovers(stateDir: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, rel: string): void => {
    if (!existsSync(dir)) return;
    const names = readdirSync(dir);
    for (const f of names) {
      const path = join(dir, f);
      if (statSync(path).isDirectory()) {
        walk(path, join(rel, f));
        continue;
      }
      if (/\.tmp$/.test(f)) out.push(join(rel, f));
      if (rel === 'versions' && /^[0-9a-f]{64}\.fmp$/.test(f) && !names.includes(`${f.slice(0, 64)}.manifest.json`)) out.push(join(rel, f));
      if (rel === 'versions' && (f === 'partial.bin') !== names.includes('partial.json') && (f === 'partial.bin' || f === 'partial.json')) out.push(join(rel, f));
    }
  };
  walk(stateDir, '');
  return out;
}

export async function auditVerifies(stateDir: string, what: string): Promise<void> {
  const r = await runCli(['audit', 'verify', '--state-dir', stateDir]);
  assert.equal(r.code, 0, `${what}: the edge's audit log: ${r.stdout}${r.stderr}`);
}
