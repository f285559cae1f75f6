/**
 * Turns an inference request body into one example for the current model: a JSON tensor
 * (`{"input": [...]}`, flat or nested, exactly the model's example size, finite numbers) or a
 * PNG image of the model's height and width (decoded with pngjs; pixels scaled to [0, 1] like
 * the training loaders; grayscale by luma for 1-channel models). Anything else is a typed
 * error naming what is wrong, answered with a 4xx.
 */
import { DataFormatError, FedmedError } from '../../shared/errors.js';
import { decodePng, pixelsToFloat } from '../data/pngFolderLoader.js';

export class InferenceRequestError extends FedmedError {
  constructor(
    message: string,
    readonly status = 422,
  ) {
    super('INFERENCE_REQUEST_INVALID', message);
  }
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** `inputShape`: one example's shape, e.g. [28, 28, 1]. */
export function exampleFromJson(body: unknown, inputShape: number[]): Float32Array {
  const size = inputShape.reduce((a, b) => a * b, 1);
  const input = (body as { input?: unknown } | null)?.input;
  if (!Array.isArray(input)) throw new InferenceRequestError('the body must be {"input": [...]} with one example as a (nested) array of numbers', 400);
  const out = new Float32Array(size);
  let n = 0;
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) {
      for (const x of v) walk(x);
      return;
    }
    // (finite as a float32 too: 1e308 is a finite double but Infinity to the model)
    if (typeof v !== 'number' || !Number.isFinite(Math.fround(v))) throw new InferenceRequestError(`input value ${n} is not a finite 32-bit number`);
    if (n >= size) throw new InferenceRequestError(`input has more than ${size} values; the model takes one example of shape [${inputShape.join(', ')}]`);
    out[n++] = v;
  };
  walk(input);
  if (n !== size) throw new InferenceRequestError(`input has ${n} values; the model takes one example of shape [${inputShape.join(', ')}] (${size} values)`);
  return out;
}

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace: number;
  /** Bytes of filtered scanlines the image inflates to (non-interlaced). */
  rawBytes: number;
}

/** Samples per pixel and the bit depths allowed for each PNG colour type. */
const COLOR_TYPES: Record<number, { channels: number; depths: number[] }> = {
  0: { channels: 1, depths: [1, 2, 4, 8, 16] },
  2: { channels: 3, depths: [8, 16] },
  3: { channels: 1, depths: [1, 2, 4, 8] },
  4: { channels: 2, depths: [8, 16] },
  6: { channels: 4, depths: [8, 16] },
};

/** The IHDR chunk, which a PNG must start with, checked before anything is inflated. */
export function parsePngHeader(bytes: Buffer): PngHeader {
  if (bytes.length < 33 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new InferenceRequestError('the body is not a PNG image (bad signature)');
  if (bytes.readUInt32BE(8) !== 13 || bytes.toString('latin1', 12, 16) !== 'IHDR') throw new InferenceRequestError('the body is not a PNG image (no IHDR chunk first)');
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  const bitDepth = bytes[24];
  const colorType = bytes[25];
  const interlace = bytes[28];
  const ct = COLOR_TYPES[colorType];
  if (!ct || !ct.depths.includes(bitDepth)) throw new InferenceRequestError(`the PNG header is invalid (colour type ${colorType} with bit depth ${bitDepth})`);
  if (bytes[26] !== 0 || bytes[27] !== 0 || interlace > 1) throw new InferenceRequestError('the PNG header is invalid (unknown compression, filter or interlace method)');
  if (width === 0 || height === 0) throw new InferenceRequestError(`image is ${width}x${height}`);
  const rawBytes = height * (1 + Math.ceil((width * ct.channels * bitDepth) / 8));
  return { width, height, bitDepth, colorType, interlace, rawBytes };
}

export function exampleFromPng(bytes: Buffer, inputShape: number[]): Float32Array {
  if (inputShape.length !== 3 || (inputShape[2] !== 1 && inputShape[2] !== 3)) throw new InferenceRequestError(`this model takes input of shape [${inputShape.join(', ')}], not an image; send JSON`, 415);
  const [h, w, channels] = inputShape;
  const ihdr = parsePngHeader(bytes);
  if (ihdr.width !== w || ihdr.height !== h) throw new InferenceRequestError(`image is ${ihdr.width}x${ihdr.height}; the model takes ${w}x${h} images`);
  // pngjs inflates an interlaced image without an output bound: a small file can expand to
  // gigabytes. Only non-interlaced images are decoded (their inflate is capped at the raw size).
  if (ihdr.interlace !== 0) throw new InferenceRequestError('interlaced (Adam7) PNGs are not accepted; send a non-interlaced PNG');
  const bound = h * (1 + w * 8); // 16-bit RGBA rows with their filter bytes
  if (ihdr.rawBytes > bound) throw new InferenceRequestError(`the PNG declares ${ihdr.rawBytes} bytes of pixel data, more than a ${w}x${h} image can take (${bound})`, 413);
  let img: ReturnType<typeof decodePng>;
  try {
    img = decodePng(bytes, 'request body');
  } catch (err) {
    // A corrupt or truncated image is the request's fault: a 4xx naming it, not a 500.
    if (err instanceof DataFormatError) throw new InferenceRequestError(err.message);
    throw err;
  }
  return pixelsToFloat(img, channels as 1 | 3);
}
