/** `fedmed demo`: a coordinator and N hospital edges on this machine, run end to end (demo/demoRunner.ts). */
import { Command, Option } from 'commander';
import { intOption } from './parseNumber.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description('run a whole federation on this machine: a coordinator and N hospital edges as separate processes, admin steps, SecAgg+ rounds with distributed DP, gated deployment and inference; offline, no data needed')
    .option('--rounds <n>', 'federated rounds', intOption('--rounds', 1), 6)
    .option('--sites <n>', 'hospital edge sites', intOption('--sites', 2), 3)
    .option('--no-dp', 'no differential privacy')
    .addOption(new Option('--security <mode>', 'how updates reach the coordinator').choices(['plain', 'secagg', 'ckks']).default('secagg'))
    .option('--exit', 'stop everything and exit when done (CI); without it the federation keeps running until Ctrl-C')
    .option('--port <port>', 'coordinator port (default 8700, or any free port when 8700 is taken)', intOption('--port', 1))
    .option('--json <file>', 'also write a machine-readable summary to this file')
    .option('--keep', 'keep the temporary working folder (keys, state, logs) after the demo')
    .action(async (flags: { rounds: number; sites: number; dp: boolean; security: 'plain' | 'secagg' | 'ckks'; exit?: boolean; port?: number; json?: string; keep?: boolean }) => {
      const { runDemo } = await import('../demo/demoRunner.js');
      process.exitCode = await runDemo({ rounds: flags.rounds, sites: flags.sites, dp: flags.dp, security: flags.security, exit: !!flags.exit, port: flags.port, jsonFile: flags.json, keep: !!flags.keep, tty: !!process.stdout.isTTY });
    });
}
