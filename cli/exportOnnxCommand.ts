/** `fedmed export-onnx`: writes a model (zoo spec + params) as an ONNX file for inference. */
import { Command } from 'commander';
import { intOption } from './parseNumber.js';

export interface ExportFlags {
  model?: string;
  params?: string;
  out: string;
  numClasses?: number;
  numFeatures?: number;
  hidden?: string;
  seed: number;
  json?: boolean;
}

export function exportOnnxCommand(): Command {
  return new Command('export-onnx')
    .description('export a model to ONNX (opset 17) for onnxruntime / TensorRT inference')
    .option('--model <name|spec.json>', 'zoo model or spec JSON (optional with --params: the file carries its spec)')
    .option('--params <file.fmp>', 'parameters to export (default: seeded initialisation)')
    .requiredOption('--out <file.onnx>', 'output ONNX file')
    .option('--num-classes <n>', 'output classes for a zoo model', intOption('--num-classes', 2))
    .option('--num-features <n>', 'input features for tabular zoo models', intOption('--num-features', 1))
    .option('--hidden <units>', 'hidden widths for mlp-tabular, e.g. 64,32')
    .option('--seed <n>', 'initialisation seed when no --params', intOption('--seed'), 1)
    .option('--json', 'print one JSON object')
    .action(async (flags: ExportFlags) => (await import('./actions/exportOnnxAction.js')).runExportOnnx(flags));
}
