/**
 * `fedmed privacy epsilon|noise`: the RDP accountant from the command line — ε for a DP
 * training schedule, or the noise multiplier that reaches a target ε.
 */
import { Command } from 'commander';
import { computeEpsilon, noiseForEpsilon } from '../shared/privacy/rdpAccountant.js';
import { api, resolveTarget, type ApiTarget } from './apiClient.js';
import { floatOption, intOption } from './parseNumber.js';

interface Common {
  samplingRate: number;
  steps: number;
  delta: number;
  json?: boolean;
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption('--sampling-rate <q>', 'Poisson sampling rate q in (0, 1] (fraction of sites per round)', floatOption('--sampling-rate'))
    .requiredOption('--steps <t>', 'number of rounds (or DP-SGD steps)', intOption('--steps', 1))
    .requiredOption('--delta <d>', 'target δ in (0, 1)', floatOption('--delta'))
    .option('--json', 'print JSON');
}

export function privacyCommand(): Command {
  const cmd = new Command('privacy').description('differential privacy accounting (RDP, subsampled Gaussian)');
  common(cmd.command('epsilon').description('ε spent by T rounds of the subsampled Gaussian mechanism').requiredOption('--noise-multiplier <z>', 'noise multiplier z (noise stddev / clip norm)', floatOption('--noise-multiplier'))).action(
    (flags: Common & { noiseMultiplier: number; classic?: boolean }) => {
      const r = computeEpsilon({ noiseMultiplier: flags.noiseMultiplier, samplingRate: flags.samplingRate, steps: flags.steps, delta: flags.delta });
      if (flags.json) process.stdout.write(`${JSON.stringify(r)}\n`);
      else console.log(`epsilon = ${r.epsilon.toFixed(4)} at delta = ${flags.delta} (best RDP order ${r.order})`);
    },
  );
  common(cmd.command('noise').description('the smallest noise multiplier z that keeps ε at or below a target').requiredOption('--target-epsilon <e>', 'target ε', floatOption('--target-epsilon'))).action(
    (flags: Common & { targetEpsilon: number }) => {
      const z = noiseForEpsilon({ targetEpsilon: flags.targetEpsilon, samplingRate: flags.samplingRate, steps: flags.steps, delta: flags.delta });
      if (flags.json) process.stdout.write(`${JSON.stringify({ noiseMultiplier: z })}\n`);
      else console.log(`noise multiplier z = ${z.toFixed(4)}`);
    },
  );
  cmd
    .command('status')
    .description("the federation's privacy ledger: ε spent per experiment")
    .option('--coordinator <url>', 'coordinator URL (or FEDMED_COORDINATOR)')
    .option('--token <token>', 'API token (or FEDMED_TOKEN)')
    .option('--json', 'print JSON')
    .action(async (flags: ApiTarget & { json?: boolean }) => {
      const s = await api<{ experiments: { id: string; name: string; privacy: { enabled: boolean; mode: string; epsilon: number; delta: number; noiseMultiplier: number; rounds: unknown[] } }[] }>(resolveTarget(flags), 'GET', '/v1/status');
      const rows = s.experiments.map((e) => ({ id: e.id, name: e.name, ...e.privacy }));
      if (flags.json) return void process.stdout.write(`${JSON.stringify(rows)}\n`);
      for (const r of rows) console.log(r.enabled ? `${r.id} "${r.name}": ${r.mode} DP, z = ${r.noiseMultiplier.toFixed(3)}, ε = ${r.epsilon.toFixed(4)} at δ = ${r.delta} after ${r.rounds.length} charged round(s)` : `${r.id} "${r.name}": no differential privacy`);
    });
  return cmd;
}
