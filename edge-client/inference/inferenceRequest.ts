/**
 * Turns an inference request body into one example for the current model: a JSON tensor
 * (`{"input": [...]}`, flat or nested, exactly the model's example size, finite numbers) or a
 * PNG image of the model's height and width (decoded with pngjs; pixels scaled to [0, 1] like
 * the training loaders; grayscale by luma for 1-channel models). Anything else is a typed
 * error naming what is wrong, answered with a 4xx.
 */
import { FedmedError } from '../../shared/errors.js';
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
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new InferenceRequestError(`input value ${n} is not a finite number`);
    if (n >= size) throw new InferenceRequestError(`input has more than ${size} values; the model takes one example of shape [${inputShape.join(', ')}]`);
    out[n++] = v;
  };
  walk(input);
  if (n !== size) throw new InferenceRequestError(`input has ${n} values; the model takes one example of shape [${inputShape.join(', ')}] (${size} values)`);
  return out;
}

export function exampleFromPng(bytes: Buffer, inputShape: number[]): Float32Array {
  if (inputShape.length !== 3 || (inputShape[2] !== 1 && inputShape[2] !== 3)) throw new InferenceRequestError(`this model takes input of shape [${inputShape.join(', ')}], not an image; send JSON`, 415);
  const [h, w, channels] = inputShape;
  if (bytes.length < 24 || !bytes.subarray(0, 8).equals(PNG_SIGNATURE)) throw new InferenceRequestError('the body is not a PNG image (bad signature)');
  // Check the size in the IHDR chunk before decoding, so a huge image is never inflated.
  const width = bytes.readUInt32BE(16);
  const height = bytes.readUInt32BE(20);
  if (width !== w || height !== h) throw new InferenceRequestError(`image is ${width}x${height}; the model takes ${w}x${h} images`);
  const img = decodePng(bytes, 'request body');
  return pixelsToFloat(img, channels as 1 | 3);
}
