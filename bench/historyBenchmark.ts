/**
 * `npm run bench -- history`: does a round cost more when the federation has a long history?
 * One in-memory simulation of 20 sites × ROUNDS rounds of logistic regression (bench/
 * historyChild.ts, its own process), and the coordinator's own per-round overhead from the
 * stored round timings — configure (sample, open the round's record), persist (publish the
 * version: version row, round row, document), total — as medians over the first 100 rounds and
 * the last 100, with their ratio (goal: late within 10% of early), and the process RSS after
 * every 100th round. FEDMED_BENCH_DATABASE=postgres://… runs it against PostgreSQL (a fresh,
 * empty database) instead of the embedded SQLite store.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median, round } from './stats.js';

const CHILD = fileURLToPath(new URL('./historyChild.js', import.meta.url));

interface ChildResult {
  timings: { round: number; status: string; configureMs: number; persistMs: number; totalMs: number }[];
  rss: { round: number; rssMb: number; heapMb: number; externalMb: number }[];
  storeLocation: { kind: string; location: string };
}

export interface HistoryResult {
  rounds: number;
  sites: number;
  store: string;
  completed: number;
  early: { rounds: string; configureMs: number; persistMs: number; totalMs: number };
  late: { rounds: string; configureMs: number; persistMs: number; totalMs: number };
  /** late median / early median. */
  ratio: { configure: number; persist: number; total: number };
  rssMb: { first: number; last: number; max: number; samples: ChildResult['rss'] };
  wallSeconds: number;
}

export function benchHistory(o: { rounds: number; database?: string }): HistoryResult {
  const dir = mkdtempSync(join(tmpdir(), 'fedmed-bench-history-'));
  const t0 = performance.now();
  try {
    const out = execFileSync(process.execPath, [CHILD, String(o.rounds), join(dir, 'out'), ...(o.database ? [o.database] : [])], { stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 }).toString();
    const r = JSON.parse(out.trim().split('\n').pop()!) as ChildResult;
    const completed = r.timings.filter((t) => t.status === 'completed');
    const window = Math.min(100, Math.floor(completed.length / 2));
    const stats = (ts: typeof completed) => ({
      rounds: `${ts[0].round}–${ts[ts.length - 1].round}`,
      configureMs: round(median(ts.map((t) => t.configureMs))),
      persistMs: round(median(ts.map((t) => t.persistMs))),
      totalMs: round(median(ts.map((t) => t.totalMs))),
    });
    const early = stats(completed.slice(0, window));
    const late = stats(completed.slice(-window));
    return {
      rounds: o.rounds,
      sites: 20,
      store: r.storeLocation.kind,
      completed: completed.length,
      early,
      late,
      ratio: { configure: round(late.configureMs / early.configureMs), persist: round(late.persistMs / early.persistMs), total: round(late.totalMs / early.totalMs) },
      rssMb: { first: r.rss[0]?.rssMb ?? NaN, last: r.rss[r.rss.length - 1]?.rssMb ?? NaN, max: Math.max(...r.rss.map((s) => s.rssMb)), samples: r.rss },
      wallSeconds: round((performance.now() - t0) / 1000, 1),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
