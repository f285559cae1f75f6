/**
 * Extra training kernels for tfjs' wasm backend.
 *
 * @tensorflow/tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel, so conv layers cannot
 * train on it, and its Conv2DBackpropInput is a slow direct loop. Both gradients are
 * correlations, so we express them with the backend's own fast (XNNPACK) forward Conv2D plus
 * Transpose/Reverse/Slice kernels, composed at the kernel level (no tape, no extra tensors
 * leaked: every intermediate is disposed before returning).
 *
 * Shapes (NHWC): x [N,H,W,Ci], filter [kh,kw,Ci,Co], dy [N,OH,OW,Co].
 *
 * Filter gradient: dW[i,j,c,o] = sum_{n,y,x} xpad[n, y*sh + i, x*sw + j, c] * dy[n,y,x,o].
 *   Treat Ci as the batch and N as the channels: conv2d(x^T [Ci,H,W,N], dy^T [OH,OW,N,Co],
 *   dilation = stride, same padding as the forward conv) = [Ci, kh', kw', Co]; crop to kh x kw
 *   and transpose to [kh,kw,Ci,Co].
 *
 * Input gradient (stride 1): dx = conv2d(dy, rot180(W) with in/out swapped, padding
 *   (kh-1-top, kh-1-bottom) x (kw-1-left, kw-1-right)). Strided convs keep the stock kernel.
 *
 * Two more stock kernels are slow on the training path and replaced (measured on cnn-28, batch 32):
 * - BatchMatMul with transposeA/transposeB (the dense-layer gradients) takes a naive path,
 *   ~8 ms vs ~1 ms for the same product with the operand transposed first by the fast Transpose.
 * - MaxPoolGrad takes ~18 ms for a [32,26,26,32] input; a direct argmax-scatter loop over the
 *   wasm heap in JS takes a few ms.
 */
import * as tf from '@tensorflow/tfjs';

import { convInfo as geometry, poolInfo, type KernelArgs, type TensorInfo, type WasmBackend } from './wasmKernelSupport.js';

type KernelFunc = tf.KernelFunc;
type Backend = tf.KernelBackend;

let registered = false;

export function registerWasmTrainingKernels(): void {
  if (registered) return;
  registered = true;
  const stockConfig: tf.KernelConfig | undefined = tf.getKernel('Conv2DBackpropInput', 'wasm');
  const stockInputGrad = stockConfig?.kernelFunc;
  if (tf.getKernel('Conv2DBackpropFilter', 'wasm')) tf.unregisterKernel('Conv2DBackpropFilter', 'wasm');
  tf.registerKernel({ kernelName: 'Conv2DBackpropFilter', backendName: 'wasm', kernelFunc: conv2dBackpropFilter as KernelFunc });
  if (stockConfig !== undefined) tf.unregisterKernel('Conv2DBackpropInput', 'wasm');
  tf.registerKernel({
    kernelName: 'Conv2DBackpropInput',
    backendName: 'wasm',
    // The stock kernel's setup (binding its wasm function) must still run: it is our fallback.
    setupFunc: stockConfig?.setupFunc,
    kernelFunc: ((args: KernelArgs) => conv2dBackpropInput(args, stockInputGrad)) as KernelFunc,
  });
  const stockMatMul = tf.getKernel('BatchMatMul', 'wasm');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  tf.registerKernel({
    kernelName: 'BatchMatMul',
    backendName: 'wasm',
    setupFunc: stockMatMul.setupFunc,
    kernelFunc: ((args: KernelArgs) => batchMatMul(args, stockMatMul.kernelFunc)) as KernelFunc,
  });
  tf.unregisterKernel('MaxPoolGrad', 'wasm');
  tf.registerKernel({ kernelName: 'MaxPoolGrad', backendName: 'wasm', kernelFunc: maxPoolGrad as KernelFunc });
}


/** Calls another registered wasm kernel directly. */
function run(name: string, backend: Backend, inputs: Record<string, TensorInfo>, attrs: Record<string, unknown>): TensorInfo {
  const k = tf.getKernel(name, 'wasm');
  if (!k) throw new Error(`wasm backend has no ${name} kernel`);
  return k.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
}

function dispose(backend: Backend, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

function convInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>): tf.backend_util.Conv2DInfo {
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') throw new Error('fedmed wasm conv gradients support NHWC only');
  return geometry(xShape, filterShape, attrs);
}

/** Patch sizes up to this use im2col + GEMM for the filter gradient (first conv layers). */
const IM2COL_MAX_PATCH = 64;

function conv2dBackpropFilter({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { x, dy } = inputs;
  const filterShape = attrs.filterShape as number[];
  const info = convInfo(x.shape, filterShape, attrs);
  const { top, bottom, left, right } = info.padInfo;
  const [kh, kw] = [info.filterHeight, info.filterWidth];
  if (kh * kw * info.inChannels <= IM2COL_MAX_PATCH) return conv2dBackpropFilterIm2col(x, dy, info, backend as WasmBackend);
  const xT = run('Transpose', backend, { x }, { perm: [3, 1, 2, 0] }); // [Ci,H,W,N]
  const dyT = run('Transpose', backend, { x: dy }, { perm: [1, 2, 0, 3] }); // [OH,OW,N,Co]
  const corr = run('Conv2D', backend, { x: xT, filter: dyT }, {
    strides: [1, 1],
    pad: [[0, 0], [top, bottom], [left, right], [0, 0]],
    dilations: [info.strideHeight, info.strideWidth],
    dataFormat: 'NHWC',
  }); // [Ci, kh', kw', Co] with kh' >= kh
  dispose(backend, xT, dyT);
  let cropped = corr;
  if (corr.shape[1] !== kh || corr.shape[2] !== kw) {
    cropped = run('Slice', backend, { x: corr }, { begin: [0, 0, 0, 0], size: [corr.shape[0], kh, kw, corr.shape[3]] });
    dispose(backend, corr);
  }
  const dW = run('Transpose', backend, { x: cropped }, { perm: [1, 2, 0, 3] }); // [kh,kw,Ci,Co]
  dispose(backend, cropped);
  return dW;
}

/**
 * Filter gradient as one GEMM: dW[K, Co] = patches^T[K, M] x dy[M, Co], K = kh*kw*Ci and
 * M = N*OH*OW. With few input channels (a first layer on grayscale images: K = 9) XNNPACK's
 * convolution is inefficient, while building the 9 x M patch matrix is cheap: ~7 ms -> ~1.5 ms
 * for cnn-28's first layer at batch 32.
 */
function conv2dBackpropFilterIm2col(x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo, backend: WasmBackend): TensorInfo {
  const [n, h, w, ci] = x.shape;
  const { outHeight: oh, outWidth: ow, filterHeight: kh, filterWidth: kw, strideHeight: sh, strideWidth: sw, outChannels: co } = info;
  const { top, left } = info.padInfo;
  const k = kh * kw * ci;
  const m = n * oh * ow;
  const patches = backend.makeOutput([1, k, m], 'float32');
  const xs = backend.typedArrayFromHeap(x);
  const p = backend.typedArrayFromHeap(patches);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      for (let c = 0; c < ci; c++) {
        const row = ((i * kw + j) * ci + c) * m;
        let col = 0;
        for (let b = 0; b < n; b++) {
          for (let oy = 0; oy < oh; oy++) {
            const yy = oy * sh + i - top;
            const inY = yy >= 0 && yy < h;
            const base = (b * h + yy) * w;
            for (let ox = 0; ox < ow; ox++) {
              const xx = ox * sw + j - left;
              p[row + col++] = inY && xx >= 0 && xx < w ? xs[(base + xx) * ci + c] : 0;
            }
          }
        }
      }
    }
  }
  const dy3 = run('Reshape', backend, { x: dy }, { shape: [1, m, co] });
  const prod = run('BatchMatMul', backend, { a: patches, b: dy3 }, { transposeA: false, transposeB: false });
  dispose(backend, patches, dy3);
  const dW = run('Reshape', backend, { x: prod }, { shape: [kh, kw, ci, co] });
  dispose(backend, prod);
  return dW;
}

function conv2dBackpropInput(args: KernelArgs, stock: KernelFunc | undefined): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs;
  const inputShape = attrs.inputShape as number[];
  const info = convInfo(inputShape, filter.shape, attrs);
  if (info.strideHeight !== 1 || info.strideWidth !== 1) {
    if (!stock) throw new Error('strided Conv2DBackpropInput is not available on wasm');
    return stock(args as unknown as Parameters<KernelFunc>[0]) as TensorInfo;
  }
  const { top, bottom, left, right } = info.padInfo;
  const [kh, kw] = [info.filterHeight, info.filterWidth];
  const flipped = run('Reverse', backend, { x: filter }, { dims: [0, 1] });
  const swapped = run('Transpose', backend, { x: flipped }, { perm: [0, 1, 3, 2] }); // [kh,kw,Co,Ci]
  dispose(backend, flipped);
  const dx = run('Conv2D', backend, { x: dy, filter: swapped }, {
    strides: [1, 1],
    pad: [[0, 0], [kh - 1 - top, kh - 1 - bottom], [kw - 1 - left, kw - 1 - right], [0, 0]],
    dilations: [1, 1],
    dataFormat: 'NHWC',
  });
  dispose(backend, swapped);
  return dx;
}

/** Transposes the last two axes explicitly (fast kernel), then multiplies without transposes (fast path). */
function batchMatMul(args: KernelArgs, stock: KernelFunc): TensorInfo {
  const { inputs, backend, attrs } = args;
  let { a, b } = inputs;
  const temps: TensorInfo[] = [];
  const swapLast = (t: TensorInfo): TensorInfo => {
    const perm = t.shape.map((_, i) => i);
    const r = perm.length;
    [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
    const out = run('Transpose', backend, { x: t }, { perm });
    temps.push(out);
    return out;
  };
  if (attrs.transposeA) a = swapLast(a);
  if (attrs.transposeB) b = swapLast(b);
  const out = stock({ inputs: { a, b }, backend, attrs: { ...attrs, transposeA: false, transposeB: false } as tf.NamedAttrMap }) as TensorInfo;
  dispose(backend, ...temps);
  return out;
}

/** MaxPool gradient: routes each dy value to the arg-max of its window (first max wins, as TF). */
function maxPoolGrad({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, input } = inputs;
  const wasm = backend as WasmBackend;
  const info = poolInfo(input.shape, attrs);
  const [n, h, w, c] = input.shape;
  const out = wasm.makeOutput(input.shape, 'float32');
  // Views are taken after makeOutput: allocation may grow the heap and detach older views.
  const x = wasm.typedArrayFromHeap(input);
  const g = wasm.typedArrayFromHeap(dy);
  const dx = wasm.typedArrayFromHeap(out);
  dx.fill(0);
  const { outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const padTop = info.padInfo.top;
  const padLeft = info.padInfo.left;
  if (strideHeight === filterHeight && strideWidth === filterWidth && padTop === 0 && padLeft === 0) {
    maxPoolGradTiled(x, g, dx, [n, h, w, c], info);
    return out;
  }
  dx.fill(0);
  // Channel-innermost loops keep memory access sequential (NHWC).
  const best = new Float32Array(c);
  const bestIdx = new Int32Array(c);
  for (let b = 0; b < n; b++) {
    const xb = b * h * w * c;
    for (let oy = 0; oy < outHeight; oy++) {
      const y0 = oy * strideHeight - padTop;
      for (let ox = 0; ox < outWidth; ox++) {
        const x0 = ox * strideWidth - padLeft;
        bestIdx.fill(-1);
        for (let fy = 0; fy < filterHeight; fy++) {
          const yy = y0 + fy;
          if (yy < 0 || yy >= h) continue;
          for (let fx = 0; fx < filterWidth; fx++) {
            const xx = x0 + fx;
            if (xx < 0 || xx >= w) continue;
            const base = xb + (yy * w + xx) * c;
            for (let ch = 0; ch < c; ch++) {
              const v = x[base + ch];
              if (bestIdx[ch] < 0 || v > best[ch]) {
                best[ch] = v;
                bestIdx[ch] = base + ch;
              }
            }
          }
        }
        const gBase = ((b * outHeight + oy) * outWidth + ox) * c;
        for (let ch = 0; ch < c; ch++) if (bestIdx[ch] >= 0) dx[bestIdx[ch]] += g[gBase + ch];
      }
    }
  }
  return out;
}

/**
 * Non-overlapping windows (stride = window, no padding: the usual 2x2/2 pooling): every input
 * element is in at most one window, so each is written exactly once, without accumulation.
 */
function maxPoolGradTiled(x: Float32Array, g: Float32Array, dx: Float32Array, [n, h, w, c]: number[], info: tf.backend_util.Conv2DInfo): void {
  const { outHeight, outWidth, filterHeight: fh, filterWidth: fw } = info;
  if (outHeight * fh < h || outWidth * fw < w) dx.fill(0); // rows/columns no window covers
  if (fh === 2 && fw === 2) {
    maxPoolGrad2x2(x, g, dx, [n, h, w, c], outHeight, outWidth);
    return;
  }
  const winIdx = new Int32Array(fh * fw);
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        for (let fy = 0; fy < fh; fy++) for (let fx = 0; fx < fw; fx++) winIdx[fy * fw + fx] = ((b * h + oy * fh + fy) * w + ox * fw + fx) * c;
        const gBase = ((b * outHeight + oy) * outWidth + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          let best = 0;
          let bestV = x[winIdx[0] + ch];
          for (let k = 1; k < winIdx.length; k++) {
            const v = x[winIdx[k] + ch];
            if (v > bestV) {
              bestV = v;
              best = k;
            }
          }
          const grad = g[gBase + ch];
          for (let k = 0; k < winIdx.length; k++) dx[winIdx[k] + ch] = k === best ? grad : 0;
        }
      }
    }
  }
}

/** The 2x2/2 case unrolled (the pooling of nearly every small CNN): ~1.5x faster than the loop above. */
function maxPoolGrad2x2(x: Float32Array, g: Float32Array, dx: Float32Array, [n, h, w, c]: number[], outHeight: number, outWidth: number): void {
  const rowStride = w * c;
  for (let b = 0; b < n; b++) {
    for (let oy = 0; oy < outHeight; oy++) {
      for (let ox = 0; ox < outWidth; ox++) {
        const i0 = ((b * h + oy * 2) * w + ox * 2) * c;
        const i1 = i0 + c;
        const i2 = i0 + rowStride;
        const i3 = i2 + c;
        const gBase = ((b * outHeight + oy) * outWidth + ox) * c;
        for (let ch = 0; ch < c; ch++) {
          const grad = g[gBase + ch];
          // First maximum wins on ties, as in TensorFlow.
          let m = x[i0 + ch];
          let k = 0;
          if (x[i1 + ch] > m) {
            m = x[i1 + ch];
            k = 1;
          }
          if (x[i2 + ch] > m) {
            m = x[i2 + ch];
            k = 2;
          }
          if (x[i3 + ch] > m) k = 3;
          dx[i0 + ch] = k === 0 ? grad : 0;
          dx[i1 + ch] = k === 1 ? grad : 0;
          dx[i2 + ch] = k === 2 ? grad : 0;
          dx[i3 + ch] = k === 3 ? grad : 0;
        }
      }
    }
  }
}
