/** The work behind `fedmed train` (loaded only when that command runs: it pulls in tfjs). */
import cliProgress from 'cli-progress';
import { TfjsModel } from '../../models/tfjsModel.js';
import { saveParamsFile } from '../../shared/model/paramsFile.js';
import { loadDataset } from '../../edge-client/data/loadDataset.js';
import { evaluateModel, localFit, type EpochReport } from '../../edge-client/training/localTrainer.js';
import { parseAugment } from '../../edge-client/training/augmentation.js';
import { initTrainingBackend, parseTrainingBackend } from '../../edge-client/training/trainingBackend.js';
import { resolveModel } from '../modelResolver.js';
import type { TrainFlags } from '../trainCommand.js';

export async function runTrain(flags: TrainFlags): Promise<void> {
  const backend = await initTrainingBackend(flags.backend ? parseTrainingBackend(flags.backend) : undefined);
  const labelColumn = flags.labelColumn === undefined ? undefined : /^\d+$/.test(flags.labelColumn) ? Number(flags.labelColumn) : flags.labelColumn;
  const data = loadDataset(flags.data, { seed: flags.seed, csv: { labelColumn, binarizeLabel: flags.binarizeLabel } });
  const tabular = data.train.exampleShape.length === 1;
  const { spec, params } = resolveModel({
    model: flags.model ?? (flags.params ? undefined : tabular ? 'mlp-tabular' : 'cnn-28'),
    params: flags.params,
    hidden: flags.hidden,
    numClasses: data.train.numClasses,
    numFeatures: tabular ? data.train.exampleShape[0] : undefined,
    seed: flags.seed,
  });
  const lr = flags.lr ?? (flags.optimizer === 'adam' ? 0.001 : 0.05);
  const bar = !flags.json && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'epoch {value}/{total} |{bar}| loss {loss} acc {acc} val-auc {vauc}', stream: process.stderr }, cliProgress.Presets.shades_classic) : null;
  bar?.start(flags.epochs, 0, { loss: '-', acc: '-', vauc: '-' });
  const onEpoch = (r: EpochReport): void => {
    bar?.update(r.epoch, { loss: r.trainLoss.toFixed(4), acc: r.trainAccuracy.toFixed(3), vauc: r.validation ? r.validation.auc.toFixed(3) : '-' });
  };
  const result = await localFit(spec, params, data.train, {
    epochs: flags.epochs,
    batchSize: flags.batchSize,
    learningRate: lr,
    optimizer: flags.optimizer,
    proxMu: flags.proxMu,
    seed: flags.seed,
    workers: flags.workers,
    augment: parseAugment(flags.augment),
    validation: data.val,
    selectBest: flags.selectBest && data.val !== undefined,
    onEpoch,
  });
  bar?.stop();
  const model = new TfjsModel(spec, result.params);
  const test = evaluateModel(model, data.test);
  model.dispose();
  if (flags.out) saveParamsFile(flags.out, spec, result.params, {}, 0o644); // asked for by name: readable like any output
  const report = {
    model: spec.name,
    data: data.source,
    examples: { train: data.train.y.length, val: data.val?.y.length ?? 0, test: data.test.y.length },
    backend: backend.name,
    backendAttempts: backend.attempts,
    optimizer: flags.optimizer,
    learningRate: lr,
    batchSize: flags.batchSize,
    seed: flags.seed,
    workers: result.workers,
    augment: flags.augment,
    convKernels: backend.convKernels,
    epochs: result.history,
    selectedEpoch: result.selectedEpoch,
    samplesPerSecond: result.samplesPerSecond,
    test,
    paramsFile: flags.out ?? null,
  };
  if (flags.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  console.log(`model ${spec.name} on ${data.source} (${report.examples.train} train / ${report.examples.val} val / ${report.examples.test} test)`);
  console.log(`backend: ${backend.name}${backend.attempts.length > 1 ? ` (skipped: ${backend.attempts.filter((a) => !a.ok).map((a) => `${a.backend}: ${a.reason}`).join('; ')})` : ''}`);
  for (const e of result.history) {
    console.log(`epoch ${e.epoch}: loss ${e.trainLoss.toFixed(4)} acc ${e.trainAccuracy.toFixed(4)}${e.validation ? ` | val loss ${e.validation.loss.toFixed(4)} acc ${e.validation.accuracy.toFixed(4)} auc ${e.validation.auc.toFixed(4)}` : ''} (${e.seconds.toFixed(1)} s)`);
  }
  console.log(`selected epoch ${result.selectedEpoch}; test: loss ${test.loss.toFixed(4)} accuracy ${test.accuracy.toFixed(4)} AUC ${test.auc.toFixed(4)}`);
  console.log(`throughput ${result.samplesPerSecond.toFixed(0)} samples/s`);
  if (flags.out) console.log(`saved parameters to ${flags.out}`);
}
