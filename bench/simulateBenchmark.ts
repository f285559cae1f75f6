/**
 * `npm run bench -- simulate`: wall time and peak RSS of whole simulations, each run as its own
 * `fedmed simulate` process (so its peak RSS is its own):
 *   (a) 100 sites × 20 rounds of mlp-tabular over real WebSockets on loopback;
 *   (b) 1,000 sites × 5 rounds with the in-memory transport (goal: < 60 s, < 2 GB);
 *   (c) 10 sites × 10 rounds of cnn-28 with SecAgg+.
 * All sites train every round (fraction fit 1) and evaluate every round.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './stats.js';

const CLI = fileURLToPath(new URL('../cli/fedmed.js', import.meta.url));

const SCENARIOS = {
  a_100sites_20rounds_ws: {
    data: { source: 'synthetic-tabular', examples: 20000, features: 16, classes: 2 },
    partition: { kind: 'iid', sites: 100 },
    model: { zoo: 'mlp-tabular', hidden: [64] },
    rounds: 20,
    transport: 'ws',
  },
  b_1000sites_5rounds_memory: {
    data: { source: 'synthetic-tabular', examples: 50000, features: 16, classes: 2 },
    partition: { kind: 'iid', sites: 1000 },
    model: { zoo: 'mlp-tabular', hidden: [32] },
    rounds: 5,
    transport: 'memory',
  },
  c_10sites_10rounds_cnn28_secagg: {
    data: { source: 'synthetic-images', examples: 2000, classes: 2 },
    partition: { kind: 'iid', sites: 10 },
    model: { zoo: 'cnn-28' },
    rounds: 10,
    transport: 'ws',
    security: 'secagg',
    backend: 'wasm',
  },
} as const;

export interface SimulateScenarioResult {
  runs: { wallSeconds: number; peakRssMb: number; setupSeconds: number; roundsCompleted: number; finalAccuracy: number | null }[];
  medianWallSeconds: number;
  maxPeakRssMb: number;
}

export function benchSimulate(o: { repeats: number; only?: string[] }): Record<string, SimulateScenarioResult> {
  const out: Record<string, SimulateScenarioResult> = {};
  for (const [name, scenario] of Object.entries(SCENARIOS)) {
    if (o.only && !o.only.some((k) => name.startsWith(k))) continue;
    const runs: SimulateScenarioResult['runs'] = [];
    for (let i = 0; i < o.repeats; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'fedmed-bench-sim-'));
      try {
        const config = { name, seed: 1, fit: { epochs: 1, batchSize: 16, learningRate: 0.01, optimizer: 'adam' }, minFitClients: 2, baselines: { local: false, pooled: false }, workers: 2, ...scenario };
        writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
        execFileSync(process.execPath, [CLI, 'simulate', '--config', join(dir, 'config.json'), '--out', join(dir, 'out')], { stdio: ['ignore', 'ignore', 'inherit'], maxBuffer: 1 << 26 });
        const r = JSON.parse(readFileSync(join(dir, 'out', 'report.json'), 'utf8')) as { wallSeconds: number; peakRssMb: number; phases: { setupSeconds: number }; runs: { rounds: { status: string }[]; final: { meanAccuracy: number } | null }[] };
        runs.push({ wallSeconds: r.wallSeconds, peakRssMb: r.peakRssMb, setupSeconds: r.phases.setupSeconds, roundsCompleted: r.runs[0].rounds.filter((x) => x.status === 'completed').length, finalAccuracy: r.runs[0].final?.meanAccuracy ?? null });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    out[name] = { runs, medianWallSeconds: median(runs.map((r) => r.wallSeconds)), maxPeakRssMb: Math.max(...runs.map((r) => r.peakRssMb)) };
  }
  return out;
}
