/**
 * `fedmed infer`: runs an ONNX model with onnxruntime-node on the examples of a .npz file and
 * prints predictions (and metrics when the file has labels). The execution provider in effect
 * and every provider that was skipped are reported.
 */
import { Command } from 'commander';
import { intOption } from './parseNumber.js';

export interface InferFlags {
  model: string;
  input: string;
  split: string;
  providers: string;
  batchSize: number;
  probabilities?: boolean;
  trtFp16?: boolean;
  trtCache?: string;
  json?: boolean;
}

export function inferCommand(): Command {
  return new Command('infer')
    .description('run an ONNX model on the examples in a .npz file')
    .requiredOption('--model <file.onnx>', 'ONNX model (from fedmed export-onnx)')
    .requiredOption('--input <file.npz>', 'inputs: a MedMNIST-style npz (uses --split) or an npz with an array "x"')
    .option('--split <name>', 'which split of a MedMNIST-style npz', 'test')
    .option('--providers <list>', 'execution providers in order of preference', 'tensorrt,cuda,cpu')
    .option('--batch-size <n>', 'examples per inference call', intOption('--batch-size', 1), 64)
    .option('--trt-fp16', 'TensorRT: build fp16 engines')
    .option('--trt-cache <dir>', 'TensorRT: engine cache folder (later starts skip the engine build)')
    .option('--probabilities', 'include every class probability in --json output')
    .option('--json', 'print one JSON object')
    .action(async (flags: InferFlags) => (await import('./actions/inferAction.js')).runInfer(flags));
}
