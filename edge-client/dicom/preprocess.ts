/**
 * preprocess: a decoded DICOM frame → one model input, NHWC [h, w, c] float32 in [0, 1].
 * Shared by training (cases) and inference, so it is pure and deterministic: same instance and
 * spec, same bytes out (float64 arithmetic in a fixed order, no randomness, no platform SIMD).
 *
 * Greyscale (MONOCHROME1/2), in this order:
 *   1. rescale: x = stored * slope + intercept (Modality LUT, linear);
 *   2. VOI window, the DICOM linear function (PS3.3 C.11.2.1.2.1) with output range [0, 1]:
 *        x <= c - 0.5 - (w-1)/2        → 0
 *        x >  c - 0.5 + (w-1)/2        → 1
 *        else ((x - (c - 0.5)) / (w-1) + 0.5)
 *      `'from-header'` uses the header's first window, or min-max when it has none;
 *      `'min-max'` maps [min, max] of the rescaled frame linearly to [0, 1] (a constant frame → 0);
 *   3. MONOCHROME1 inversion (`invert: 'monochrome1'`): y → 1 - y;
 *   4. resize to spec.size, separable per axis: area averaging (exact box filter over the source
 *      pixels each output pixel covers) when the axis shrinks, bilinear with half-pixel centres
 *      (edge clamped) when it grows or stays;
 *   5. normalise 'unit': clamp to [0, 1] (steps 2-4 already stay in range; this guards rounding).
 * Colour (3 samples): the Modality and VOI LUTs do not apply to colour (PS3.3 C.7.6.3.1), so each
 * sample is scaled by 1/(2^bitsStored - 1); YBR_FULL is converted to RGB (PS3.3 C.7.6.3.1.2).
 * Channels: colour → grey (channels 1) is the luma 0.299 R + 0.587 G + 0.114 B; grey → 3 channels
 * replicates the grey value.
 * A modality outside spec.modality (or a missing one when the spec names some) → DicomError.
 */
import { DicomError } from '../../shared/errors.js';
import type { InputSpec } from '../../shared/model/inputSpec.js';
import { decodeDicom } from './dicomDecoder.js';
import type { DecodedInstance } from './dicomTypes.js';

function acceptedModalities(spec: InputSpec): string[] | null {
  if (spec.modality === undefined) return null;
  return typeof spec.modality === 'string' ? [spec.modality] : spec.modality;
}

/** PS3.3 C.11.2.1.2.1 linear VOI function with output [0, 1]. */
export function linearWindow(x: number, center: number, width: number): number {
  const lo = center - 0.5 - (width - 1) / 2;
  const hi = center - 0.5 + (width - 1) / 2;
  if (x <= lo) return 0;
  if (x > hi) return 1;
  return (x - (center - 0.5)) / (width - 1) + 0.5;
}

/** Per-axis resampling weights: for each output index, source indices and weights summing to 1. */
interface AxisWeights {
  start: Int32Array;
  count: Int32Array;
  index: Int32Array;
  weight: Float64Array;
}

function axisWeights(src: number, dst: number): AxisWeights {
  const start = new Int32Array(dst);
  const count = new Int32Array(dst);
  const index: number[] = [];
  const weight: number[] = [];
  const scale = src / dst;
  for (let i = 0; i < dst; i++) {
    start[i] = index.length;
    if (scale > 1) {
      // Area: output i covers source [i*scale, (i+1)*scale).
      const a = i * scale;
      const b = (i + 1) * scale;
      for (let s = Math.floor(a); s < Math.min(src, Math.ceil(b)); s++) {
        const overlap = Math.min(b, s + 1) - Math.max(a, s);
        if (overlap > 0) {
          index.push(s);
          weight.push(overlap / scale);
        }
      }
    } else {
      // Bilinear, half-pixel centres, clamped at the edges.
      const x = Math.min(Math.max((i + 0.5) * scale - 0.5, 0), src - 1);
      const x0 = Math.floor(x);
      const x1 = Math.min(x0 + 1, src - 1);
      const f = x - x0;
      index.push(x0);
      weight.push(1 - f);
      if (x1 !== x0 && f > 0) {
        index.push(x1);
        weight.push(f);
      }
    }
    count[i] = index.length - start[i];
  }
  return { start, count, index: Int32Array.from(index), weight: Float64Array.from(weight) };
}

/**
 * Resizes one plane [sh, sw] → [dh, dw], separably, along the axis whose pass leaves the smaller
 * intermediate first (columns first on a tie, as for any image that shrinks alike both ways): a
 * 65535×7 image resized to 224² would otherwise go through a 65535×224 intermediate (117 MB).
 */
function resizePlane(plane: Float64Array, sh: number, sw: number, dh: number, dw: number): Float64Array {
  if (sh === dh && sw === dw) return plane;
  if (dh * sw < sh * dw) return transpose(resizeColumnsThenRows(transpose(plane, sh, sw), sw, sh, dw, dh), dw, dh);
  return resizeColumnsThenRows(plane, sh, sw, dh, dw);
}

function transpose(plane: Float64Array, h: number, w: number): Float64Array {
  const out = new Float64Array(h * w);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out[x * h + y] = plane[y * w + x];
  return out;
}

function resizeColumnsThenRows(plane: Float64Array, sh: number, sw: number, dh: number, dw: number): Float64Array {
  const wx = axisWeights(sw, dw);
  const wy = axisWeights(sh, dh);
  const tmp = new Float64Array(sh * dw);
  for (let y = 0; y < sh; y++) {
    const row = y * sw;
    for (let x = 0; x < dw; x++) {
      let acc = 0;
      for (let k = wx.start[x], end = k + wx.count[x]; k < end; k++) acc += plane[row + wx.index[k]] * wx.weight[k];
      tmp[y * dw + x] = acc;
    }
  }
  const out = new Float64Array(dh * dw);
  for (let y = 0; y < dh; y++) {
    for (let k = wy.start[y], end = k + wy.count[y]; k < end; k++) {
      const src = wy.index[k] * dw;
      const w = wy.weight[k];
      for (let x = 0; x < dw; x++) out[y * dw + x] += tmp[src + x] * w;
    }
  }
  return out;
}

function greyPlane(decoded: DecodedInstance, spec: InputSpec): Float64Array {
  const { pixels, rescale, metadata } = decoded;
  const n = pixels.length;
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = pixels[i] * rescale.slope + rescale.intercept;

  const win = spec.window === 'from-header' ? (decoded.window ?? 'min-max') : spec.window;
  if (win === 'min-max') {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      if (x[i] < min) min = x[i];
      if (x[i] > max) max = x[i];
    }
    const range = max - min;
    for (let i = 0; i < n; i++) x[i] = range > 0 ? (x[i] - min) / range : 0;
  } else {
    if (!(win.width >= 1)) throw new DicomError(`VOI window width ${win.width} must be >= 1 (Window Width 0028,1051)`);
    for (let i = 0; i < n; i++) x[i] = linearWindow(x[i], win.center, win.width);
  }
  if (spec.invert === 'monochrome1' && metadata.photometric === 'MONOCHROME1') {
    for (let i = 0; i < n; i++) x[i] = 1 - x[i];
  }
  return x;
}

/** Colour frame → three [0, 1] RGB planes. */
function rgbPlanes(decoded: DecodedInstance): Float64Array[] {
  const { pixels, metadata } = decoded;
  const n = metadata.rows * metadata.columns;
  const max = 2 ** metadata.bitsStored - 1;
  const ybr = metadata.photometric.startsWith('YBR_FULL') || metadata.photometric === 'YBR_PARTIAL_420';
  const half = 2 ** (metadata.bitsStored - 1);
  const planes = [new Float64Array(n), new Float64Array(n), new Float64Array(n)];
  for (let i = 0; i < n; i++) {
    let r = pixels[3 * i];
    let g = pixels[3 * i + 1];
    let b = pixels[3 * i + 2];
    if (ybr) {
      const y = r;
      const cb = g - half;
      const cr = b - half;
      r = y + 1.402 * cr;
      g = y - 0.344136 * cb - 0.714136 * cr;
      b = y + 1.772 * cb;
    }
    planes[0][i] = Math.min(Math.max(r / max, 0), 1);
    planes[1][i] = Math.min(Math.max(g / max, 0), 1);
    planes[2][i] = Math.min(Math.max(b / max, 0), 1);
  }
  return planes;
}

/**
 * One model input from a decoded frame: Float32Array of spec.size[0]*spec.size[1]*spec.channels,
 * NHWC order (one example, [h, w, c]), values in [0, 1]. Pure and deterministic.
 */
export function preprocess(decoded: DecodedInstance, spec: InputSpec): Float32Array {
  const { metadata } = decoded;
  const accepted = acceptedModalities(spec);
  if (accepted && (metadata.modality === null || !accepted.includes(metadata.modality))) {
    throw new DicomError(`Modality (0008,0060) ${metadata.modality ?? '(missing)'} is not one this model takes (${accepted.join(', ')})`);
  }
  const { rows, columns, samplesPerPixel } = metadata;
  if (decoded.pixels.length !== rows * columns * samplesPerPixel) {
    throw new DicomError(`pixel buffer has ${decoded.pixels.length} values, Rows x Columns x Samples per Pixel = ${rows}x${columns}x${samplesPerPixel}`);
  }
  let planes: Float64Array[];
  if (samplesPerPixel === 1) {
    planes = [greyPlane(decoded, spec)];
  } else if (samplesPerPixel === 3) {
    planes = rgbPlanes(decoded);
  } else {
    throw new DicomError(`Samples per Pixel (0028,0002) = ${samplesPerPixel}: only 1 or 3 can be preprocessed`);
  }
  if (spec.channels === 1 && planes.length === 3) {
    const [r, g, b] = planes;
    const y = new Float64Array(r.length);
    for (let i = 0; i < y.length; i++) y[i] = 0.299 * r[i] + 0.587 * g[i] + 0.114 * b[i];
    planes = [y];
  }
  const [h, w] = spec.size;
  const resized = planes.map((p) => resizePlane(p, rows, columns, h, w));
  const c = spec.channels;
  const out = new Float32Array(h * w * c);
  for (let ch = 0; ch < c; ch++) {
    const p = resized[resized.length === 1 ? 0 : ch];
    for (let i = 0; i < h * w; i++) {
      const v = p[i];
      out[i * c + ch] = v < 0 ? 0 : v > 1 ? 1 : v;
    }
  }
  return out;
}

/** Decode and preprocess on this thread: what a decode worker does, and the pool does inline for small uncompressed objects. */
export function decodeAndPreprocess(p10: Uint8Array, spec: InputSpec): { decoded: Omit<DecodedInstance, 'pixels'>; input: Float32Array } {
  const instance = decodeDicom(p10);
  const input = preprocess(instance, spec);
  return { decoded: { uids: instance.uids, metadata: instance.metadata, rescale: instance.rescale, window: instance.window }, input };
}
