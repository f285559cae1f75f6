import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { cachedKernelGraphs, setOnnxruntimeConvKernelsEnabled } from '../../../edge-client/training/onnxruntimeConvKernels.js';
import { initTrainingBackend } from '../../../edge-client/training/trainingBackend.js';

/** Gradients of f at the given inputs, computed on one backend. */
async function gradsOn(backend: 'wasm' | 'cpu', f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: { shape: number[]; seed: number }[]): Promise<Float32Array[]> {
  if (backend === 'wasm') await initTrainingBackend('wasm');
  else await tf.setBackend('cpu');
  return tf.tidy(() => {
    const xs = inputs.map((i) => tf.randomNormal(i.shape, 0, 1, 'float32', i.seed));
    return tf.grads(f)(xs).map((g) => g.dataSync() as Float32Array);
  });
}

function assertClose(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, `${what}: length`);
  let maxDiff = 0;
  let maxAbs = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    maxAbs = Math.max(maxAbs, Math.abs(b[i]));
  }
  assert.ok(maxAbs > 0, `${what}: all-zero gradient proves nothing`);
  assert.ok(maxDiff <= 1e-4 * Math.max(1, maxAbs), `${what}: max diff ${maxDiff} (max |g| ${maxAbs})`);
}

interface Case {
  name: string;
  f: (...xs: tf.Tensor[]) => tf.Tensor;
  inputs: { shape: number[]; seed: number }[];
}

// A weighted sum makes every output position matter differently (a plain sum would hide
// transposed or misplaced gradients).
const weighted = (t: tf.Tensor): tf.Tensor => tf.sum(tf.mul(t, tf.sin(tf.reshape(tf.range(0, t.size, 1, 'float32'), t.shape))));

const CASES: Case[] = [
  { name: 'conv2d 1 input channel, valid (im2col filter gradient)', f: (x, w) => weighted(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid')), inputs: [{ shape: [4, 10, 9, 1], seed: 1 }, { shape: [3, 3, 1, 6], seed: 2 }] },
  { name: 'conv2d 8 channels, valid, 3x2 kernel', f: (x, w) => weighted(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid')), inputs: [{ shape: [3, 9, 8, 8], seed: 3 }, { shape: [3, 2, 8, 5], seed: 4 }] },
  { name: 'conv2d 8 channels, same padding, stride 1', f: (x, w) => weighted(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'same')), inputs: [{ shape: [2, 7, 6, 8], seed: 5 }, { shape: [3, 3, 8, 4], seed: 6 }] },
  { name: 'conv2d 8 channels, same padding, stride 2', f: (x, w) => weighted(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'same')), inputs: [{ shape: [2, 9, 8, 8], seed: 7 }, { shape: [3, 3, 8, 4], seed: 8 }] },
  { name: 'conv2d stride 2 valid with unused rows (filter-gradient crop, transposed-conv output padding)', f: (x, w) => weighted(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 2, 'valid')), inputs: [{ shape: [2, 8, 10, 4], seed: 20 }, { shape: [3, 3, 4, 5], seed: 21 }] },
  { name: 'fused conv2d + bias + relu', f: (x, w, b) => weighted(tf.fused.conv2d({ x: x as tf.Tensor4D, filter: w as tf.Tensor4D, strides: 1, pad: 'valid', bias: b, activation: 'relu' })), inputs: [{ shape: [2, 8, 8, 4], seed: 9 }, { shape: [3, 3, 4, 6], seed: 10 }, { shape: [6], seed: 11 }] },
  { name: 'maxpool 2x2 stride 2 valid', f: (x) => weighted(tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid')), inputs: [{ shape: [3, 9, 8, 5], seed: 12 }] },
  { name: 'maxpool 3x3 stride 2 same', f: (x) => weighted(tf.maxPool(x as tf.Tensor4D, 3, 2, 'same')), inputs: [{ shape: [2, 7, 7, 3], seed: 13 }] },
  { name: 'matMul a^T b', f: (a, b) => weighted(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, true, false)), inputs: [{ shape: [7, 5], seed: 14 }, { shape: [7, 3], seed: 15 }] },
  { name: 'matMul a b^T', f: (a, b) => weighted(tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, false, true)), inputs: [{ shape: [5, 7], seed: 16 }, { shape: [3, 7], seed: 17 }] },
  { name: 'batched matMul a^T b^T', f: (a, b) => weighted(tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, true, true)), inputs: [{ shape: [2, 7, 5], seed: 18 }, { shape: [2, 3, 7], seed: 19 }] },
];

// The wasm backend runs convolutions and matmuls on onnxruntime (onnxruntimeConvKernels.ts) and
// falls back to XNNPACK plus fedmed's gradient kernels (wasmKernels.ts): both paths are checked.
for (const kernels of ['onnxruntime', 'xnnpack'] as const) {
  describe(`edge-client/training: gradients on wasm (${kernels} kernels) equal the reference cpu backend`, () => {
    before(async () => {
      const info = await initTrainingBackend('wasm');
      if (kernels === 'onnxruntime') assert.match(info.convKernels, /^onnxruntime-cpu/, info.kernelsNote);
      setOnnxruntimeConvKernelsEnabled(kernels === 'onnxruntime');
    });
    after(async () => {
      setOnnxruntimeConvKernelsEnabled(true);
      await initTrainingBackend('wasm');
    });
    if (kernels === 'onnxruntime') {
      it('really runs on onnxruntime (a kernel graph is compiled per new shape)', async () => {
        const before = cachedKernelGraphs();
        await gradsOn('wasm', (x, w) => tf.sum(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, 'valid')), [{ shape: [1, 5, 7, 2], seed: 1 }, { shape: [2, 2, 2, 3], seed: 2 }]);
        assert.ok(cachedKernelGraphs() >= before + 2, `${before} -> ${cachedKernelGraphs()}`);
      });
    }
    for (const c of CASES) {
      it(c.name, async () => {
        const wasm = await gradsOn('wasm', c.f, c.inputs);
        const cpu = await gradsOn('cpu', c.f, c.inputs);
        wasm.forEach((g, i) => assertClose(g, cpu[i], `${c.name}, input ${i}`));
      });
    }
  });
}

describe('edge-client/training: wasm kernels do not leak', () => {
  it('leaks no tensors and frees intermediate wasm buffers (onnxruntime and xnnpack paths)', async () => {
    await initTrainingBackend('wasm');
    const x = tf.randomNormal([4, 12, 12, 3]);
    const w = tf.variable(tf.randomNormal([3, 3, 3, 8]));
    const step = (): void => {
      tf.tidy(() => {
        const g = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.maxPool(tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 'valid'), 2, 2, 'valid')))([x, w]);
        g.forEach((t) => t.dataSync());
      });
    };
    for (const ort of [true, false]) {
      setOnnxruntimeConvKernelsEnabled(ort);
      step();
      const before = tf.memory();
      for (let i = 0; i < 5; i++) step();
      const afterMem = tf.memory();
      assert.equal(afterMem.numTensors, before.numTensors);
      assert.equal(afterMem.numBytes, before.numBytes);
    }
    setOnnxruntimeConvKernelsEnabled(true);
    x.dispose();
    w.dispose();
  });
});
