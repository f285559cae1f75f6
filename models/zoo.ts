/**
 * The model zoo: each entry builds one ModelSpec. Builders to tfjs (training) and ONNX
 * (inference) live beside this file and work for any valid spec, not only zoo entries.
 */
import { UsageError } from '../shared/errors.js';
import { parseModelSpec, type LayerSpec, type ModelSpec } from '../shared/model/modelSpec.js';

export interface ZooOptions {
  /** Number of output classes (default 2). */
  numClasses?: number;
  /** Number of input features, for tabular models (default 13, as UCI Heart Disease). */
  numFeatures?: number;
  /** Hidden layer widths for mlp-tabular (default [64]); [] gives logistic regression. */
  hidden?: number[];
  /** Image side for cnn-28 (default 28) and channels (default 1). */
  imageSize?: number;
  channels?: number;
}

export interface ZooEntry {
  name: string;
  description: string;
  build(options: ZooOptions): ModelSpec;
}

/** conv32-pool-conv64-pool-dense128-dense C: ~225k parameters at C = 10, for MedMNIST-size images. */
function cnn28(o: ZooOptions): ModelSpec {
  const size = o.imageSize ?? 28;
  return {
    name: 'cnn-28',
    inputShape: [size, size, o.channels ?? 1],
    layers: [
      { type: 'conv2d', filters: 32, kernelSize: 3 },
      { type: 'relu' },
      { type: 'maxpool2d', poolSize: 2 },
      { type: 'conv2d', filters: 64, kernelSize: 3 },
      { type: 'relu' },
      { type: 'maxpool2d', poolSize: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 128 },
      { type: 'relu' },
      { type: 'dropout', rate: 0.5 },
      { type: 'dense', units: o.numClasses ?? 2 },
      { type: 'softmax' },
    ],
  };
}

function mlp(name: string, hidden: number[], o: ZooOptions): ModelSpec {
  const layers: LayerSpec[] = [];
  for (const units of hidden) layers.push({ type: 'dense', units }, { type: 'relu' });
  layers.push({ type: 'dense', units: o.numClasses ?? 2 }, { type: 'softmax' });
  return { name, inputShape: [o.numFeatures ?? 13], layers };
}

export const ZOO: readonly ZooEntry[] = [
  { name: 'cnn-28', description: 'CNN for 28x28 grayscale images (conv32-pool-conv64-pool-dense128-dense C)', build: cnn28 },
  { name: 'mlp-tabular', description: 'MLP for tabular features (hidden layers from --hidden, default 64)', build: (o) => mlp('mlp-tabular', o.hidden ?? [64], o) },
  { name: 'logreg', description: 'logistic / softmax regression: mlp-tabular with no hidden layer', build: (o) => mlp('logreg', [], o) },
];

/** Builds a zoo model's spec; throws UsageError for an unknown name. */
export function zooModel(name: string, options: ZooOptions = {}): ModelSpec {
  const entry = ZOO.find((e) => e.name === name);
  if (!entry) throw new UsageError(`unknown model "${name}"; the zoo has: ${ZOO.map((e) => e.name).join(', ')}`);
  return parseModelSpec(entry.build(options), `zoo model ${name}`);
}
