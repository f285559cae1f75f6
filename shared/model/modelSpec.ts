/**
 * ModelSpec: the one description of a model architecture, from which everything else is derived:
 * the flat parameter layout, the tfjs training model and the ONNX inference graph.
 *
 * Tensors are NHWC (as tfjs). Conv kernels are [kh, kw, inChannels, filters], dense kernels are
 * [inUnits, units]; the ONNX builder transposes where ONNX wants another order.
 */
import { ModelSpecError } from '../errors.js';
import { parseInputSpec, type InputSpec } from './inputSpec.js';

export type Pair = [number, number];
export type Padding = 'valid' | 'same';

export interface Conv2dLayer {
  type: 'conv2d';
  filters: number;
  kernelSize: number | Pair;
  strides?: number | Pair;
  padding?: Padding;
}
export interface MaxPool2dLayer {
  type: 'maxpool2d';
  poolSize: number | Pair;
  strides?: number | Pair;
  padding?: Padding;
}
export interface DenseLayer {
  type: 'dense';
  units: number;
}
export interface FlattenLayer {
  type: 'flatten';
}
export interface ReluLayer {
  type: 'relu';
}
export interface DropoutLayer {
  type: 'dropout';
  rate: number;
}
export interface SoftmaxLayer {
  type: 'softmax';
}

export type LayerSpec =
  | Conv2dLayer
  | MaxPool2dLayer
  | DenseLayer
  | FlattenLayer
  | ReluLayer
  | DropoutLayer
  | SoftmaxLayer;

export type LayerType = LayerSpec['type'];

export interface ModelSpec {
  /** Human-readable name, e.g. "cnn-28". Part of the spec hash. */
  name: string;
  /** Shape of one example, without the batch dimension: [h, w, c] for images, [n] for tabular. */
  inputShape: number[];
  layers: LayerSpec[];
  /**
   * How DICOM images become this model's input (window, inversion, size; shared/model/inputSpec.ts).
   * Part of the spec, hence of every version's id and signature. Absent: the default for the input shape.
   */
  input?: InputSpec;
}

/** One parameter tensor a layer owns. */
export interface ParamSpec {
  /** Unique name, e.g. "layer0_conv2d/kernel". */
  name: string;
  shape: number[];
}

/** A layer with its defaults filled in and its input/output shapes computed. */
export interface ResolvedLayer {
  index: number;
  spec: LayerSpec;
  inShape: number[];
  outShape: number[];
  params: ParamSpec[];
  /** For conv2d/maxpool2d: kernel/pool size, strides and explicit TF-style pads [top, left, bottom, right]. */
  window?: { size: Pair; strides: Pair; pads: [number, number, number, number] };
}

const LAYER_TYPES: readonly LayerType[] = ['conv2d', 'maxpool2d', 'dense', 'flatten', 'relu', 'dropout', 'softmax'];
const MAX_DIM = 1 << 20;

/** Checks an untrusted value (e.g. parsed JSON) and returns it as a ModelSpec, or throws ModelSpecError. */
export function parseModelSpec(value: unknown, source = 'model spec'): ModelSpec {
  if (!isObject(value)) throw new ModelSpecError(`${source}: expected a JSON object`);
  const { name, inputShape, layers, input } = value;
  if (typeof name !== 'string' || name.length === 0) throw new ModelSpecError(`${source}: "name" must be a non-empty string`);
  if (!Array.isArray(inputShape) || inputShape.length === 0 || !inputShape.every(isPositiveInt)) {
    throw new ModelSpecError(`${source}: "inputShape" must be a non-empty array of positive integers`);
  }
  if (!Array.isArray(layers) || layers.length === 0) throw new ModelSpecError(`${source}: "layers" must be a non-empty array`);
  const spec: ModelSpec = { name, inputShape: [...inputShape], layers: layers.map((l, i) => parseLayer(l, `${source}: layers[${i}]`)) };
  if (input !== undefined) {
    spec.input = parseInputSpec(input, `${source}: input`);
    if (inputShape.length !== 3 || spec.input.size[0] !== inputShape[0] || spec.input.size[1] !== inputShape[1] || spec.input.channels !== inputShape[2]) {
      throw new ModelSpecError(`${source}: "input" makes [${spec.input.size.join(', ')}, ${spec.input.channels}] images, but "inputShape" is [${inputShape.join(', ')}]`);
    }
  }
  resolveLayers(spec); // throws on shapes that do not fit
  return spec;
}

function parseLayer(value: unknown, where: string): LayerSpec {
  if (!isObject(value)) throw new ModelSpecError(`${where}: expected an object`);
  const type = value.type;
  if (typeof type !== 'string' || !LAYER_TYPES.includes(type as LayerType)) {
    throw new ModelSpecError(`${where}: unknown layer type ${JSON.stringify(type)} (expected one of ${LAYER_TYPES.join(', ')})`);
  }
  const allowed: Record<LayerType, string[]> = {
    conv2d: ['filters', 'kernelSize', 'strides', 'padding'],
    maxpool2d: ['poolSize', 'strides', 'padding'],
    dense: ['units'],
    flatten: [],
    relu: [],
    dropout: ['rate'],
    softmax: [],
  };
  for (const key of Object.keys(value)) {
    if (key !== 'type' && !allowed[type as LayerType].includes(key)) throw new ModelSpecError(`${where}: unknown field "${key}" for a ${type} layer`);
  }
  switch (type as LayerType) {
    case 'conv2d': {
      const layer: Conv2dLayer = { type: 'conv2d', filters: requireInt(value.filters, `${where}.filters`), kernelSize: requirePair(value.kernelSize, `${where}.kernelSize`) };
      if (value.strides !== undefined) layer.strides = requirePair(value.strides, `${where}.strides`);
      if (value.padding !== undefined) layer.padding = requirePadding(value.padding, `${where}.padding`);
      return layer;
    }
    case 'maxpool2d': {
      const layer: MaxPool2dLayer = { type: 'maxpool2d', poolSize: requirePair(value.poolSize, `${where}.poolSize`) };
      if (value.strides !== undefined) layer.strides = requirePair(value.strides, `${where}.strides`);
      if (value.padding !== undefined) layer.padding = requirePadding(value.padding, `${where}.padding`);
      return layer;
    }
    case 'dense':
      return { type: 'dense', units: requireInt(value.units, `${where}.units`) };
    case 'dropout': {
      const rate = value.rate;
      if (typeof rate !== 'number' || !(rate >= 0 && rate < 1)) throw new ModelSpecError(`${where}.rate must be a number in [0, 1)`);
      return { type: 'dropout', rate };
    }
    default:
      return { type: type as 'flatten' | 'relu' | 'softmax' };
  }
}

/**
 * Walks the layers, fills defaults, computes every layer's input/output shape and parameters.
 * Throws ModelSpecError naming the first layer that does not fit its input.
 */
export function resolveLayers(spec: ModelSpec): ResolvedLayer[] {
  let shape = [...spec.inputShape];
  const out: ResolvedLayer[] = [];
  spec.layers.forEach((layer, index) => {
    const where = `model "${spec.name}" layers[${index}] (${layer.type})`;
    const prefix = `layer${index}_${layer.type}`;
    const inShape = shape;
    let params: ParamSpec[] = [];
    let window: ResolvedLayer['window'];
    switch (layer.type) {
      case 'conv2d':
      case 'maxpool2d': {
        if (inShape.length !== 3) throw new ModelSpecError(`${where}: needs an [h, w, c] input, got [${inShape.join(', ')}]`);
        const size = toPair(layer.type === 'conv2d' ? layer.kernelSize : layer.poolSize);
        const strides = toPair(layer.strides ?? (layer.type === 'conv2d' ? 1 : size));
        const padding = layer.padding ?? 'valid';
        const [h, w, c] = inShape;
        const [oh, padH] = windowOutput(h, size[0], strides[0], padding);
        const [ow, padW] = windowOutput(w, size[1], strides[1], padding);
        if (oh < 1 || ow < 1) throw new ModelSpecError(`${where}: window ${size.join('x')} does not fit input ${h}x${w}`);
        window = { size, strides, pads: [padH[0], padW[0], padH[1], padW[1]] };
        if (layer.type === 'conv2d') {
          shape = [oh, ow, layer.filters];
          params = [
            { name: `${prefix}/kernel`, shape: [size[0], size[1], c, layer.filters] },
            { name: `${prefix}/bias`, shape: [layer.filters] },
          ];
        } else {
          shape = [oh, ow, c];
        }
        break;
      }
      case 'dense': {
        if (inShape.length !== 1) throw new ModelSpecError(`${where}: needs a flat input; add a flatten layer before it (input is [${inShape.join(', ')}])`);
        params = [
          { name: `${prefix}/kernel`, shape: [inShape[0], layer.units] },
          { name: `${prefix}/bias`, shape: [layer.units] },
        ];
        shape = [layer.units];
        break;
      }
      case 'flatten':
        shape = [inShape.reduce((a, b) => a * b, 1)];
        break;
      case 'softmax':
        if (index !== spec.layers.length - 1) throw new ModelSpecError(`${where}: softmax is only allowed as the last layer`);
        if (inShape.length !== 1) throw new ModelSpecError(`${where}: softmax needs a flat input`);
        break;
      case 'relu':
      case 'dropout':
        break;
    }
    out.push({ index, spec: layer, inShape, outShape: shape, params, window });
  });
  const last = out[out.length - 1].outShape;
  if (last.length !== 1) throw new ModelSpecError(`model "${spec.name}": the output must be a flat vector of class scores, got [${last.join(', ')}]`);
  return out;
}

/** Number of output classes (units of the final layer). */
export function numClassesOf(spec: ModelSpec): number {
  const layers = resolveLayers(spec);
  return layers[layers.length - 1].outShape[0];
}

/** TF/Keras window arithmetic: output size and [before, after] padding. */
function windowOutput(inSize: number, k: number, s: number, padding: Padding): [number, [number, number]] {
  if (padding === 'valid') return [Math.floor((inSize - k) / s) + 1, [0, 0]];
  const outSize = Math.ceil(inSize / s);
  const total = Math.max((outSize - 1) * s + k - inSize, 0);
  const before = Math.floor(total / 2);
  return [outSize, [before, total - before]];
}

export function toPair(v: number | Pair): Pair {
  return typeof v === 'number' ? [v, v] : [v[0], v[1]];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isPositiveInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_DIM;
}
function requireInt(v: unknown, where: string): number {
  if (!isPositiveInt(v)) throw new ModelSpecError(`${where} must be a positive integer`);
  return v;
}
function requirePair(v: unknown, where: string): number | Pair {
  if (isPositiveInt(v)) return v;
  if (Array.isArray(v) && v.length === 2 && v.every(isPositiveInt)) return [v[0], v[1]];
  throw new ModelSpecError(`${where} must be a positive integer or a pair of them`);
}
function requirePadding(v: unknown, where: string): Padding {
  if (v === 'valid' || v === 'same') return v;
  throw new ModelSpecError(`${where} must be "valid" or "same"`);
}
