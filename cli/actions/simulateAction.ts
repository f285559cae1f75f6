/** The work behind `fedmed simulate` (loaded only when that command runs: it pulls in tfjs and the whole federation). */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import cliProgress from 'cli-progress';
import { UsageError } from '../../shared/errors.js';
import { parseSimulationConfig } from '../../simulations/simulationConfig.js';
import { runSimulation } from '../../simulations/simulationRunner.js';
import type { SimulationReport } from '../../simulations/simulationReport.js';
import type { SimulateFlags } from '../simulateCommand.js';

function readConfig(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new UsageError(`${path}: cannot read the simulation config (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path}: not valid JSON (${(err as Error).message})`);
  }
}

/** One line per model: mean accuracy over sites and accuracy/AUC on all test data. */
export function summaryLines(r: SimulationReport): string[] {
  const f = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '  –  ' : x.toFixed(3));
  const lines = [`${'model'.padEnd(28)} mean-site-acc  all-test-acc  all-test-auc`];
  const b = r.baselines;
  if (b.pooled) lines.push(`${'pooled (centralised)'.padEnd(28)} ${f(b.pooled.meanAccuracy).padStart(13)} ${f(b.pooled.pooledTest.accuracy).padStart(13)} ${f(b.pooled.pooledTest.auc).padStart(13)}`);
  if (b.local) lines.push(`${'local only (own test)'.padEnd(28)} ${f(b.local.meanAccuracy).padStart(13)}`);
  if (b.local?.best) lines.push(`${`best local (${b.local.best.site})`.padEnd(28)} ${f(b.local.best.meanAccuracy).padStart(13)}`);
  for (const run of r.runs) lines.push(`${run.label.padEnd(28)} ${f(run.final?.meanAccuracy).padStart(13)} ${f(run.final?.pooledTest.accuracy).padStart(13)} ${f(run.final?.pooledTest.auc).padStart(13)}`);
  return lines;
}

export async function runSimulate(flags: SimulateFlags): Promise<void> {
  const raw = readConfig(flags.config) as Record<string, unknown>;
  const over = (key: string, value: unknown) => value !== undefined && (raw[key] = value);
  over('rounds', flags.rounds);
  over('seed', flags.seed);
  over('workers', flags.workers);
  over('transport', flags.transport);
  over('fractionFit', flags.fractionFit);
  if (flags.sites !== undefined) raw.partition = { ...(raw.partition as object), sites: flags.sites };
  if (flags.strategy) raw.strategies = flags.strategy.split(',').map((name) => ({ name: name.trim() }));
  // Data paths in the config are relative to the config file.
  const data = raw.data as { path?: string } | undefined;
  if (data?.path) data.path = resolve(join(flags.config, '..'), data.path);
  const config = parseSimulationConfig(raw, flags.config);
  const tty = process.stderr.isTTY && !flags.json;
  const bar = tty ? new cliProgress.SingleBar({ format: '{run} |{bar}| round {value}/{total} {status} acc {acc}', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
  let current = '';
  const report = await runSimulation(config, {
    outDir: flags.out,
    onLog: (m) => (bar ? undefined : process.stderr.write(`${m}\n`)),
    onProgress: (p) => {
      if (!bar) return void process.stderr.write(`${p.run}: round ${p.round}/${p.rounds} ${p.status}${p.accuracy !== null ? ` accuracy ${p.accuracy.toFixed(3)}` : ''}\n`);
      if (current !== p.run) {
        if (current) bar.stop();
        current = p.run;
        bar.start(p.rounds, 0, { run: p.run.padEnd(12), status: '', acc: '–' });
      }
      bar.update(p.round, { status: p.status, acc: p.accuracy === null ? '–' : p.accuracy.toFixed(3) });
    },
  });
  bar?.stop();
  if (flags.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  else process.stdout.write(`${summaryLines(report).join('\n')}\nreport: ${join(flags.out, 'report.html')} (data: ${join(flags.out, 'report.json')}), ${report.wallSeconds.toFixed(1)} s, peak RSS ${report.peakRssMb} MB\n`);
}
