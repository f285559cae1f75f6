/**
 * `fedmed simulate --config FILE.json [--out DIR]`: runs a whole federation on this machine with
 * the real coordinator and edge code (see simulations/). Flags override config fields. Prints a
 * progress bar on a TTY, the results table at the end, and writes DIR/report.json and
 * DIR/report.html.
 */
import { Command, Option } from 'commander';
import { floatOption, intOption } from './parseNumber.js';

export interface SimulateFlags {
  config: string;
  out: string;
  rounds?: number;
  seed?: number;
  sites?: number;
  workers?: number;
  transport?: 'ws' | 'memory';
  strategy?: string;
  fractionFit?: number;
  json?: boolean;
}

export function simulateCommand(): Command {
  return new Command('simulate')
    .description('simulate a federation on this machine (real coordinator and edge code, many sites, faults) and write report.json + report.html')
    .requiredOption('--config <file.json>', 'simulation config (see README: data, partition, model, strategies, rounds, fit, faults, transport, ...)')
    .option('--out <dir>', 'output folder', 'simulation-out')
    .option('--rounds <n>', 'override: rounds per strategy', intOption('--rounds', 1))
    .option('--seed <n>', 'override: seed', intOption('--seed', 0))
    .option('--sites <n>', 'override: partition.sites', intOption('--sites', 1))
    .option('--workers <n>', 'override: worker threads hosting the sites', intOption('--workers', 1))
    .addOption(new Option('--transport <kind>', 'override: ws (loopback WebSockets) or memory').choices(['ws', 'memory']))
    .option('--strategy <names>', 'override: comma-separated strategies (with their default options)')
    .option('--fraction-fit <f>', 'override: fraction of sites per round', floatOption('--fraction-fit'))
    .option('--json', 'print the report as JSON instead of the summary table')
    .action(async (flags: SimulateFlags) => (await import('./actions/simulateAction.js')).runSimulate(flags));
}
