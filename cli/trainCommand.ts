/**
 * `fedmed train`: local training of a zoo model on a local data file, as a site would do in a
 * round, with per-epoch progress, test metrics and the backend that actually ran.
 */
import { Command, Option } from 'commander';
import type { OptimizerName } from '../edge-client/training/trainingStep.js';
import { TRAINING_BACKENDS } from '../edge-client/training/trainingBackendNames.js';
import { floatOption, intOption } from './parseNumber.js';

export interface TrainFlags {
  model?: string;
  params?: string;
  data: string;
  epochs: number;
  batchSize: number;
  lr?: number;
  optimizer: OptimizerName;
  proxMu: number;
  backend?: string;
  seed: number;
  workers: number;
  augment: string;
  hidden?: string;
  labelColumn?: string;
  binarizeLabel?: boolean;
  selectBest: boolean;
  out?: string;
  json?: boolean;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('train a model on local data (npz, csv or a PNG class folder) and report test metrics')
    .requiredOption('--data <path>', 'data: MedMNIST-style .npz, .csv (label = last column unless --label-column), or folder of PNG class folders')
    .option('--model <name|spec.json>', 'zoo model (cnn-28, mlp-tabular, logreg) or a ModelSpec JSON file')
    .option('--params <file.fmp>', 'start from these parameters instead of a seeded initialisation')
    .option('--epochs <n>', 'training epochs', intOption('--epochs', 1), 10)
    .option('--batch-size <n>', 'mini-batch size', intOption('--batch-size', 1), 32)
    .option('--lr <rate>', 'learning rate (default 0.001 for adam, 0.05 for sgd)', floatOption('--lr'))
    .addOption(new Option('--optimizer <name>', 'optimizer').choices(['adam', 'sgd']).default('adam'))
    .option('--prox-mu <mu>', 'FedProx proximal coefficient (0 = off)', floatOption('--prox-mu'), 0)
    .addOption(new Option('--backend <name>', 'tfjs backend (default: first that loads)').choices([...TRAINING_BACKENDS]))
    .option('--seed <n>', 'seed for initialisation, splits and shuffling', intOption('--seed'), 1)
    .option('--workers <n>', 'data-parallel worker threads (wasm backend), e.g. the number of cores', intOption('--workers', 1), 1)
    .option('--augment <list>', 'image augmentation: flip, shift=N, or none', 'none')
    .option('--hidden <units>', 'hidden layer widths for mlp-tabular, e.g. 64,32')
    .option('--label-column <name|index>', 'CSV label column (default: last)')
    .option('--binarize-label', 'CSV: label = 1 when > 0 (e.g. UCI heart disease "num")')
    .option('--no-select-best', 'keep the last epoch instead of the best one on validation data')
    .option('--out <file.fmp>', 'save the trained parameters here')
    .option('--json', 'print one JSON object instead of text')
    .action(async (flags: TrainFlags) => (await import('./actions/trainAction.js')).runTrain(flags));
}
