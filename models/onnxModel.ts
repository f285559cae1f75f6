/**
 * ONNX builder: ModelSpec + flat params -> ONNX model bytes (IR 8, opset 17).
 *
 * IR 8 / opset 17 is deliberately conservative: it is what the ONNX 1.12 checker (Debian's
 * python3-onnx), Netron and every onnxruntime since 1.12 accept.
 *
 * The graph takes the same NHWC input as the tfjs model. ONNX convolutions want NCHW, so the
 * graph transposes the input once before the first conv/pool and back to NHWC before flatten,
 * which keeps dense kernels in the flat vector valid for both builders. The graph always ends in
 * Softmax: fedmed models output class probabilities.
 */
import { OnnxModelError } from '../shared/errors.js';
import { resolveLayers, type ModelSpec, type ResolvedLayer } from '../shared/model/modelSpec.js';
import { checkParams, layoutOf, paramView } from '../shared/model/parameterLayout.js';
import {
  decodeOnnxModel,
  encodeOnnxModel,
  floatAttr,
  floatInitializer,
  floatValueInfo,
  intAttr,
  intsAttr,
  type IAttributeProto,
  type INodeProto,
  type ITensorProto,
} from './onnxGraph.js';

export { ONNX_IR_VERSION, ONNX_OPSET } from './onnxGraph.js';
export const ONNX_INPUT_NAME = 'input';
export const ONNX_OUTPUT_NAME = 'probabilities';

export function buildOnnxModel(spec: ModelSpec, params: Float32Array, options: { producerVersion?: string } = {}): Uint8Array {
  const layout = layoutOf(spec);
  checkParams(params, layout, `parameters for model "${spec.name}"`);
  const layers = resolveLayers(spec);
  const nodes: INodeProto[] = [];
  const initializers: ITensorProto[] = [];
  let current = ONNX_INPUT_NAME;
  let nchw = false; // layout of `current` for image tensors
  let counter = 0;
  const fresh = (base: string): string => `${base}_${counter++}`;
  const addNode = (opType: string, inputs: string[], attrs: IAttributeProto[] = []): string => {
    const out = fresh(opType.toLowerCase());
    nodes.push({ opType, input: inputs, output: [out], name: out, attribute: attrs });
    return out;
  };
  const toNchw = (): void => {
    if (!nchw) {
      current = addNode('Transpose', [current], [intsAttr('perm', [0, 3, 1, 2])]);
      nchw = true;
    }
  };

  for (const layer of layers) {
    const s = layer.spec;
    switch (s.type) {
      case 'conv2d': {
        toNchw();
        const w = layer.window!;
        const [kh, kw, ci, co] = layer.params[0].shape;
        const kernel = paramView(params, layout, layer.params[0].name);
        // HWIO (tfjs) -> OIHW (ONNX)
        const oihw = new Float32Array(kernel.length);
        for (let y = 0; y < kh; y++)
          for (let x = 0; x < kw; x++)
            for (let i = 0; i < ci; i++)
              for (let o = 0; o < co; o++) oihw[((o * ci + i) * kh + y) * kw + x] = kernel[((y * kw + x) * ci + i) * co + o];
        const wName = `${layer.params[0].name}`;
        const bName = `${layer.params[1].name}`;
        initializers.push(floatInitializer(wName, [co, ci, kh, kw], oihw), floatInitializer(bName, [co], paramView(params, layout, bName)));
        current = addNode('Conv', [current, wName, bName], [
          intsAttr('kernel_shape', w.size),
          intsAttr('strides', w.strides),
          intsAttr('pads', w.pads),
          intsAttr('dilations', [1, 1]),
          intAttr('group', 1),
        ]);
        break;
      }
      case 'maxpool2d': {
        toNchw();
        const w = layer.window!;
        current = addNode('MaxPool', [current], [intsAttr('kernel_shape', w.size), intsAttr('strides', w.strides), intsAttr('pads', w.pads)]);
        break;
      }
      case 'flatten':
        if (nchw) {
          current = addNode('Transpose', [current], [intsAttr('perm', [0, 2, 3, 1])]);
          nchw = false;
        }
        current = addNode('Flatten', [current], [intAttr('axis', 1)]);
        break;
      case 'dense': {
        const [kName, bName] = [layer.params[0].name, layer.params[1].name];
        initializers.push(floatInitializer(kName, layer.params[0].shape, paramView(params, layout, kName)), floatInitializer(bName, layer.params[1].shape, paramView(params, layout, bName)));
        current = addNode('Gemm', [current, kName, bName], [floatAttr('alpha', 1), floatAttr('beta', 1), intAttr('transA', 0), intAttr('transB', 0)]);
        break;
      }
      case 'relu':
        current = addNode('Relu', [current]);
        break;
      case 'dropout':
        break; // identity at inference
      case 'softmax':
        break; // always appended below
    }
  }
  const last: ResolvedLayer = layers[layers.length - 1];
  nodes.push({ opType: 'Softmax', input: [current], output: [ONNX_OUTPUT_NAME], name: 'softmax_out', attribute: [intAttr('axis', 1)] });

  return encodeOnnxModel({
    name: spec.name,
    docString: `fedmed model "${spec.name}"`,
    producerVersion: options.producerVersion,
    nodes,
    initializers,
    inputs: [floatValueInfo(ONNX_INPUT_NAME, ['batch', ...spec.inputShape])],
    outputs: [floatValueInfo(ONNX_OUTPUT_NAME, ['batch', last.outShape[0]])],
  });
}

/** Minimal structural check of ONNX bytes (parses the protobuf and looks for a graph). */
export function parseOnnxModel(bytes: Uint8Array, source: string): ReturnType<typeof decodeOnnxModel> {
  let model: ReturnType<typeof decodeOnnxModel>;
  try {
    model = decodeOnnxModel(bytes);
  } catch (err) {
    throw new OnnxModelError(`${source}: not a valid ONNX protobuf (${(err as Error).message})`, { cause: err });
  }
  if (!model.graph?.node?.length) throw new OnnxModelError(`${source}: ONNX model has no graph nodes`);
  return model;
}
