/**
 * Convolution kernels for tfjs' wasm backend that run on onnxruntime's CPU provider (MLAS:
 * native AVX2/AVX-512 GEMMs), which is 2-4x faster than wasm-SIMD XNNPACK on these shapes.
 *
 * tfjs kernels are synchronous, so we use onnxruntime-node's synchronous native session (the
 * object its public async API wraps in setImmediate). Each distinct (op, shapes, attributes)
 * gets a tiny ONNX graph (transposes between tfjs' NHWC/HWIO and ONNX's NCHW/OIHW plus one
 * Conv or ConvTranspose), built once and cached. Inputs are passed as views of the wasm heap
 * (no copy); the result is copied into a new wasm tensor.
 *
 *   Conv2D / FusedConv2D (bias, relu):  Conv
 *   Conv2DBackpropInput:                ConvTranspose with the forward conv's pads and strides
 *   Conv2DBackpropFilter:               Conv of x^T [Ci,N,H,W] with dy^T [Co,N,OH,OW] as the
 *                                       kernel, dilated by the stride (see wasmKernels.ts)
 *   BatchMatMul / _FusedMatMul (dense): MatMul (+ Add bias, + Relu)

 * Anything else (NCHW data, dilated convs, other fused activations) goes to the previous
 * kernel. onnxruntime-node pins this file to its 1.30 binding API (package.json pins it).
 */
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import type { Binding } from 'onnxruntime-node/dist/binding.js';
import { encodeOnnxModel, floatValueInfo, intsAttr, node, type INodeProto } from '../../models/onnxGraph.js';

import { convInfo, type KernelArgs, type TensorInfo, type WasmBackend } from './wasmKernelSupport.js';

interface NativeBinding {
  binding: { InferenceSession: Binding.InferenceSessionConstructor };
  initOrt: () => void;
}

export interface OrtKernelOptions {
  /** onnxruntime intra-op threads per kernel call (1 = one core). */
  threads: number;
}

let native: NativeBinding | null = null;
let threads = 1;
let enabled = true;
const sessions = new Map<string, { session: Binding.InferenceSession; output: string }>();

/**
 * Registers the kernels. Throws when onnxruntime's native binding cannot be loaded; callers
 * keep the wasm kernels then (and report why).
 */
export function registerOnnxruntimeConvKernels(options: OrtKernelOptions): void {
  threads = options.threads;
  if (native) return;
  const require = createRequire(import.meta.url);
  const loaded = require('onnxruntime-node/dist/binding.js') as NativeBinding;
  loaded.initOrt();
  native = loaded;
  for (const kernelName of ['Conv2D', 'FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'BatchMatMul', '_FusedMatMul']) {
    const previous = tf.getKernel(kernelName, 'wasm');
    tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      setupFunc: previous.setupFunc,
      kernelFunc: ((args: KernelArgs) => (enabled ? runOrFallback(kernelName, args) : null) ?? previous.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0])) as tf.KernelFunc,
    });
  }
}

/**
 * Switches the onnxruntime kernels off (the XNNPACK/wasm kernels run instead) or back on; used
 * to compare both paths in tests and benchmarks.
 */
export function setOnnxruntimeConvKernelsEnabled(on: boolean): void {
  enabled = on;
}

/** Changes the thread count for kernels built from now on (graphs are cached per count). */
export function setOnnxruntimeConvThreads(n: number): void {
  threads = n;
}

/** Number of cached kernel graphs (for tests). */
export function cachedKernelGraphs(): number {
  return sessions.size;
}

function runOrFallback(kernelName: string, args: KernelArgs): TensorInfo | null {
  const { inputs, attrs } = args;
  if (kernelName === 'BatchMatMul' || kernelName === '_FusedMatMul') return matMul(kernelName, args);
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') return null;
  const dil = attrs.dilations;
  if (dil !== undefined && dil !== 1 && !(Array.isArray(dil) && dil[0] === 1 && dil[1] === 1)) return null;
  const backend = args.backend as WasmBackend;
  switch (kernelName) {
    case 'Conv2D':
      return convForward(inputs.x, inputs.filter, undefined, 'linear', attrs, backend);
    case 'FusedConv2D': {
      const activation = (attrs.activation as string | undefined) ?? 'linear';
      if ((activation !== 'linear' && activation !== 'relu') || inputs.preluActivationWeights) return null;
      return convForward(inputs.x, inputs.filter, inputs.bias, activation, attrs, backend);
    }
    case 'Conv2DBackpropInput':
      return convBackpropInput(inputs.dy, inputs.filter, attrs.inputShape as number[], attrs, backend);
    case 'Conv2DBackpropFilter':
      return convBackpropFilter(inputs.x, inputs.dy, attrs.filterShape as number[], attrs, backend);
    default:
      return null;
  }
}

function pads(info: tf.backend_util.Conv2DInfo): number[] {
  const p = info.padInfo;
  return [p.top, p.left, p.bottom, p.right];
}

const NHWC_TO_NCHW = [0, 3, 1, 2];
const NCHW_TO_NHWC = [0, 2, 3, 1];
const HWIO_TO_OIHW = [3, 2, 0, 1];

function convForward(x: TensorInfo, filter: TensorInfo, bias: TensorInfo | undefined, activation: string, attrs: Record<string, unknown>, backend: WasmBackend): TensorInfo {
  const info = convInfo(x.shape, filter.shape, attrs);
  const key = `fwd|${x.shape}|${filter.shape}|${!!bias}|${activation}|${info.strideHeight},${info.strideWidth}|${pads(info)}`;
  const outShape = info.outShape;
  const run = graph(key, () => {
    const nodes: INodeProto[] = [
      node('Transpose', ['x'], ['xn'], [intsAttr('perm', NHWC_TO_NCHW)]),
      node('Transpose', ['w'], ['wn'], [intsAttr('perm', HWIO_TO_OIHW)]),
      node('Conv', bias ? ['xn', 'wn', 'b'] : ['xn', 'wn'], ['yn'], [intsAttr('strides', [info.strideHeight, info.strideWidth]), intsAttr('pads', pads(info))]),
    ];
    let last = 'yn';
    if (activation === 'relu') {
      nodes.push(node('Relu', ['yn'], ['yr']));
      last = 'yr';
    }
    nodes.push(node('Transpose', [last], ['y'], [intsAttr('perm', NCHW_TO_NHWC)]));
    const inputs = [floatValueInfo('x', x.shape), floatValueInfo('w', filter.shape)];
    if (bias) inputs.push(floatValueInfo('b', [filter.shape[3]]));
    return { nodes, inputs, output: floatValueInfo('y', outShape) };
  });
  const feeds: Record<string, [TensorInfo]> = { x: [x], w: [filter] };
  if (bias) feeds.b = [bias];
  return execute(run, feeds, outShape, backend);
}

function convBackpropInput(dy: TensorInfo, filter: TensorInfo, inputShape: number[], attrs: Record<string, unknown>, backend: WasmBackend): TensorInfo | null {
  const info = convInfo(inputShape, filter.shape, attrs);
  const [, h, w] = inputShape;
  const [kh, kw] = [info.filterHeight, info.filterWidth];
  const p = pads(info);
  // ConvTranspose output = s*(in-1) + output_padding + k - pad_begin - pad_end; pick output_padding to land on H, W.
  const outPadH = h - (info.strideHeight * (info.outHeight - 1) + kh - p[0] - p[2]);
  const outPadW = w - (info.strideWidth * (info.outWidth - 1) + kw - p[1] - p[3]);
  if (outPadH < 0 || outPadW < 0 || outPadH >= info.strideHeight || outPadW >= info.strideWidth) return null;
  const key = `dx|${dy.shape}|${filter.shape}|${inputShape}|${info.strideHeight},${info.strideWidth}|${p}`;
  const run = graph(key, () => ({
    nodes: [
      node('Transpose', ['dy'], ['dyn'], [intsAttr('perm', NHWC_TO_NCHW)]),
      node('Transpose', ['w'], ['wn'], [intsAttr('perm', HWIO_TO_OIHW)]),
      node('ConvTranspose', ['dyn', 'wn'], ['dxn'], [intsAttr('strides', [info.strideHeight, info.strideWidth]), intsAttr('pads', p), intsAttr('output_padding', [outPadH, outPadW])]),
      node('Transpose', ['dxn'], ['dx'], [intsAttr('perm', NCHW_TO_NHWC)]),
    ],
    inputs: [floatValueInfo('dy', dy.shape), floatValueInfo('w', filter.shape)],
    output: floatValueInfo('dx', inputShape),
  }));
  return execute(run, { dy: [dy], w: [filter] }, inputShape, backend);
}

function convBackpropFilter(x: TensorInfo, dy: TensorInfo, filterShape: number[], attrs: Record<string, unknown>, backend: WasmBackend): TensorInfo {
  const info = convInfo(x.shape, filterShape, attrs);
  const [kh, kw, ci, co] = filterShape;
  const p = pads(info);
  const [, h, w] = x.shape;
  // The correlation yields kh' x kw' >= kh x kw when the stride leaves rows unused; crop after.
  const fullH = h + p[0] + p[2] - info.strideHeight * (info.outHeight - 1);
  const fullW = w + p[1] + p[3] - info.strideWidth * (info.outWidth - 1);
  const key = `dw|${x.shape}|${dy.shape}|${filterShape}|${info.strideHeight},${info.strideWidth}|${p}`;
  const run = graph(key, () => ({
    nodes: [
      node('Transpose', ['x'], ['xt'], [intsAttr('perm', [3, 0, 1, 2])]),
      node('Transpose', ['dy'], ['dyt'], [intsAttr('perm', [3, 0, 1, 2])]),
      node('Conv', ['xt', 'dyt'], ['r'], [intsAttr('dilations', [info.strideHeight, info.strideWidth]), intsAttr('pads', p)]),
      node('Transpose', ['r'], ['dw'], [intsAttr('perm', [2, 3, 0, 1])]),
    ],
    inputs: [floatValueInfo('x', x.shape), floatValueInfo('dy', dy.shape)],
    output: floatValueInfo('dw', [fullH, fullW, ci, co]),
  }));
  if (fullH === kh && fullW === kw) return execute(run, { x: [x], dy: [dy] }, filterShape, backend);
  const full = runGraph(run, { x: [x], dy: [dy] }, backend);
  const out = backend.makeOutput(filterShape, 'float32');
  const dst = backend.typedArrayFromHeap(out);
  for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) dst.set(full.subarray(((i * fullW + j) * ci) * co, ((i * fullW + j + 1) * ci) * co), ((i * kw + j) * ci) * co);
  return out;
}

function matMul(kernelName: string, { inputs, attrs, backend }: KernelArgs): TensorInfo | null {
  const { a, b, bias } = inputs;
  const activation = (attrs.activation as string | undefined) ?? 'linear';
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || (activation !== 'linear' && activation !== 'relu') || inputs.preluActivationWeights) return null;
  if (a.shape.length < 2 || b.shape.length < 2 || (bias && bias.shape.length !== 1)) return null;
  const ta = !!attrs.transposeA;
  const tb = !!attrs.transposeB;
  const swap = (rank: number): number[] => {
    const perm = Array.from({ length: rank }, (_, i) => i);
    [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
    return perm;
  };
  const m = ta ? a.shape[a.shape.length - 1] : a.shape[a.shape.length - 2];
  const k = ta ? a.shape[a.shape.length - 2] : a.shape[a.shape.length - 1];
  const kb = tb ? b.shape[b.shape.length - 1] : b.shape[b.shape.length - 2];
  const n = tb ? b.shape[b.shape.length - 2] : b.shape[b.shape.length - 1];
  if (k !== kb) return null; // let the stock kernel raise its own shape error
  const outShape = [...tf.backend_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2)), m, n];
  const key = `mm|${kernelName}|${a.shape}|${b.shape}|${ta}|${tb}|${!!bias}|${activation}`;
  const run = graph(key, () => {
    const nodes: INodeProto[] = [];
    let an = 'a';
    let bn = 'b';
    if (ta) nodes.push(node('Transpose', ['a'], [(an = 'at')], [intsAttr('perm', swap(a.shape.length))]));
    if (tb) nodes.push(node('Transpose', ['b'], [(bn = 'bt')], [intsAttr('perm', swap(b.shape.length))]));
    let last = 'mm';
    nodes.push(node('MatMul', [an, bn], [last]));
    if (bias) nodes.push(node('Add', [last, 'bias'], [(last = 'biased')]));
    if (activation === 'relu') nodes.push(node('Relu', [last], [(last = 'act')]));
    nodes.push(node('Identity', [last], ['y']));
    const ins = [floatValueInfo('a', a.shape), floatValueInfo('b', b.shape)];
    if (bias) ins.push(floatValueInfo('bias', bias.shape));
    return { nodes, inputs: ins, output: floatValueInfo('y', outShape) };
  });
  const feeds: Record<string, [TensorInfo]> = { a: [a], b: [b] };
  if (bias) feeds.bias = [bias];
  return execute(run, feeds, outShape, backend as WasmBackend);
}

interface CompiledGraph {
  session: Binding.InferenceSession;
  output: string;
}

function graph(key: string, build: () => { nodes: INodeProto[]; inputs: ReturnType<typeof floatValueInfo>[]; output: ReturnType<typeof floatValueInfo> }): CompiledGraph {
  const fullKey = `${key}|t${threads}`;
  let g = sessions.get(fullKey);
  if (!g) {
    const parts = build();
    const bytes = encodeOnnxModel({ name: 'fedmed_kernel', nodes: parts.nodes, inputs: parts.inputs, outputs: [parts.output] });
    const session = new native!.binding.InferenceSession();
    session.loadModel(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength, {
      executionProviders: ['cpu'],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      // With more than one thread, don't let onnxruntime's pool spin between calls: the JS
      // thread needs that core for the tfjs kernels that run in between.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    g = { session, output: parts.output.name! };
    sessions.set(fullKey, g);
  }
  return g;
}

function runGraph(g: CompiledGraph, feeds: Record<string, [TensorInfo]>, backend: WasmBackend): Float32Array {
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, [t]] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor('float32', backend.typedArrayFromHeap(t), t.shape);
  const result = g.session.run(ortFeeds, { [g.output]: null }, {});
  return (result[g.output] as ort.Tensor).data as Float32Array;
}

function execute(g: CompiledGraph, feeds: Record<string, [TensorInfo]>, outShape: number[], backend: WasmBackend): TensorInfo {
  const data = runGraph(g, feeds, backend);
  const out = backend.makeOutput(outShape, 'float32');
  backend.typedArrayFromHeap(out).set(data);
  return out;
}
