/** `fedmed edge enroll|start`: a hospital's edge node joining and serving the federation. */
import { Command, Option } from 'commander';
import { enrollSite } from '../edge-client/federation/enrollment.js';
import { TRAINING_BACKENDS, type TrainingBackendName } from '../edge-client/training/trainingBackendNames.js';
import { floatOption, intOption } from './parseNumber.js';

export function edgeCommand(): Command {
  const cmd = new Command('edge').description('run a hospital edge node');
  cmd
    .command('enroll')
    .description("create this site's key pair, register it with a one-time join token, pin the coordinator's key")
    .requiredOption('--coordinator <url>', 'coordinator URL, e.g. https://fl.example.org:8700')
    .requiredOption('--token <token>', 'one-time join token from the federation admin (fmj_...)')
    .requiredOption('--state-dir <dir>', "where this site's key and state live")
    .action(async (flags: { coordinator: string; token: string; stateDir: string }) => {
      const r = await enrollSite(flags.coordinator, flags.token, flags.stateDir);
      console.log(`enrolled as site "${r.site}"; coordinator key pinned (${r.coordinatorPublicKey}); key and state in ${flags.stateDir}`);
    });
  cmd
    .command('start')
    .description('connect to the coordinator and take part in rounds with the local data')
    .requiredOption('--state-dir <dir>', 'state dir from "fedmed edge enroll"')
    .requiredOption('--data <path>', 'local data: .npz, .csv or a PNG class folder (never leaves this machine)')
    .option('--model-cache <dir>', 'where the last global model is kept (default STATE_DIR/models)')
    .option('--workers <n>', 'training worker threads', intOption('--workers', 1), 1)
    .addOption(new Option('--backend <name>', 'tfjs training backend').choices([...TRAINING_BACKENDS]).default('wasm'))
    .option('--seed <n>', 'seed of the local train/val/test split (CSV and PNG data)', intOption('--seed'), 1)
    .option('--binarize-label', 'CSV: label = 1 when > 0')
    .option('--privacy-budget <epsilon>', "the site's total privacy budget ε; rounds without DP or beyond it are refused", floatOption('--privacy-budget'))
    .option('--privacy-budget-per-experiment <epsilon>', 'optional per-experiment limit', floatOption('--privacy-budget-per-experiment'))
    .option('--privacy-delta <delta>', 'δ at which the budget is counted', floatOption('--privacy-delta'), 1e-5)
    .action(async (flags: { stateDir: string; data: string; modelCache?: string; workers: number; backend: TrainingBackendName; seed: number; binarizeLabel?: boolean; privacyBudget?: number; privacyBudgetPerExperiment?: number; privacyDelta: number }) => {
      // Loaded here: these pull in tfjs, which other commands do not need.
      const { initTrainingBackend } = await import('../edge-client/training/trainingBackend.js');
      const { loadDataset } = await import('../edge-client/data/loadDataset.js');
      const { EdgeClient } = await import('../edge-client/federation/edgeClient.js');
      await initTrainingBackend(flags.backend);
      const data = loadDataset(flags.data, { seed: flags.seed, csv: { binarizeLabel: flags.binarizeLabel } });
      const budget = flags.privacyBudget === undefined ? undefined : { epsilon: flags.privacyBudget, delta: flags.privacyDelta, perExperiment: flags.privacyBudgetPerExperiment };
      const client = new EdgeClient({ stateDir: flags.stateDir, modelCacheDir: flags.modelCache, data, workers: flags.workers, backend: flags.backend, budget });
      const done = new Promise<void>((resolve, reject) => {
        client.on('fatal', reject);
        const stop = (): void => void client.stop().then(resolve);
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      client.start();
      await done;
    });
  return cmd;
}
