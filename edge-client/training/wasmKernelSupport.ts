/**
 * What fedmed's tfjs-wasm kernels share: the kernel argument shape, the wasm backend's heap
 * access, and TF's convolution/pooling geometry from kernel attributes.
 */
import * as tf from '@tensorflow/tfjs';

export type TensorInfo = tf.TensorInfo;
export type ExplicitPad = [[number, number], [number, number], [number, number], [number, number]];

export interface KernelArgs {
  inputs: Record<string, TensorInfo>;
  backend: tf.KernelBackend;
  attrs: Record<string, unknown>;
}

/** The parts of tfjs' BackendWasm we use: heap views of tensors (no copy) and new outputs. */
export interface WasmBackend extends tf.KernelBackend {
  typedArrayFromHeap(t: TensorInfo): Float32Array;
  makeOutput(shape: number[], dtype: 'float32'): TensorInfo;
}

/** Convolution geometry (output size, TF-style pads) of an NHWC conv from its kernel attributes. */
export function convInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number],
    1,
    attrs.pad as 'valid' | 'same' | number | ExplicitPad,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
}

/** Pooling geometry from MaxPool/MaxPoolGrad attributes. */
export function poolInfo(xShape: number[], attrs: Record<string, unknown>): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    attrs.filterSize as [number, number] | number,
    attrs.strides as [number, number] | number,
    1,
    attrs.pad as 'valid' | 'same' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
}
