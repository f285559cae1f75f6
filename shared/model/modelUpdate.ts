/**
 * The OTA update codec: a lossless encoding of one flat parameter vector, either whole or as
 * the difference from a base vector the receiver already holds.
 *
 *   4 bytes  magic "FMU1"
 *   u32 LE   header length (<= 4 KiB)
 *   header   UTF-8 JSON: {format, kind, transform, codec, count, base, target}
 *   body     compressed byte planes
 *
 * Delta: each float32's bit pattern read as an int32, the wrapping difference `new - old`
 * zig-zag mapped (small changes of either sign become small unsigned numbers, so their high
 * bytes are zero; XOR of the bit patterns is offered too, but flips more bits when a value
 * crosses a power of two). Then the 4-byte words are byte-shuffled into four planes (as
 * Blosc's shuffle does: the mostly-zero high bytes end up together) and compressed with a codec
 * in Node's zlib. Exact by construction: integer arithmetic mod 2^32 inverts exactly, so NaN
 * payloads and signed zeros survive too. The receiver checks `target` (SHA-256 of the result)
 * and the caller checks the signed manifest on top.
 */
import { createHash } from 'node:crypto';
import { brotliCompressSync, brotliDecompressSync, constants as zlibConstants, deflateRawSync, inflateRawSync } from 'node:zlib';
import { FedmedError } from '../errors.js';
import { float32Bytes, paramsSha256 } from './modelHash.js';

export const UPDATE_FORMAT = 'fedmed.update/1';
const MAGIC = Buffer.from('FMU1', 'ascii');
const MAX_HEADER_BYTES = 4096;

export type UpdateKind = 'delta' | 'full';
export type UpdateTransform = 'sub' | 'xor';
export type UpdateCodec = 'br' | 'deflate';

export interface UpdateHeader {
  format: typeof UPDATE_FORMAT;
  kind: UpdateKind;
  /** How a delta was formed ('none' for a full model). */
  transform: UpdateTransform | 'none';
  codec: UpdateCodec;
  count: number;
  /** SHA-256 of the base params (delta only). */
  base: string | null;
  /** SHA-256 of the params this update produces. */
  target: string;
}

export interface EncodeUpdateOptions {
  transform?: UpdateTransform;
  codec?: UpdateCodec;
  /** brotli quality 0–11 or deflate level 0–9 (default 5 / 6: ~25 ms per 225k params here). */
  level?: number;
  /** 'auto' (default): the smaller of the delta and the full model. */
  kind?: UpdateKind | 'auto';
  /** SHA-256 of `target` / `base` when the caller already has them. */
  targetSha256?: string;
  baseSha256?: string;
}

/** An update that is truncated, corrupted, for another base, or does not reproduce its target. */
export class ModelUpdateError extends FedmedError {
  constructor(message: string) {
    super('MODEL_UPDATE_INVALID', message);
  }
}

/** Encodes `target`, as a delta from `base` when given (and smaller, unless `kind` says). */
export function encodeModelUpdate(target: Float32Array, base: Float32Array | null, options: EncodeUpdateOptions = {}): Buffer {
  const codec = options.codec ?? 'br';
  const targetSha = options.targetSha256 ?? paramsSha256(target);
  const want = options.kind ?? 'auto';
  if (want === 'delta' && !base) throw new ModelUpdateError('a delta update needs a base model');
  if (base && base.length !== target.length) {
    if (want === 'delta') throw new ModelUpdateError(`cannot form a delta between models of ${base.length} and ${target.length} parameters`);
    base = null;
  }
  const full = want === 'delta' ? null : frame({ kind: 'full', transform: 'none', codec, count: target.length, base: null, target: targetSha }, compress(shuffle(new Uint32Array(target.buffer, target.byteOffset, target.length)), codec, options.level, target.length));
  if (!base || want === 'full') return full!;
  const transform = options.transform ?? 'sub';
  const words = deltaWords(new Uint32Array(target.buffer, target.byteOffset, target.length), new Uint32Array(base.buffer, base.byteOffset, base.length), transform);
  const delta = frame({ kind: 'delta', transform, codec, count: target.length, base: options.baseSha256 ?? paramsSha256(base), target: targetSha }, compress(shuffle(words), codec, options.level, target.length));
  return full && full.length < delta.length ? full : delta;
}

/** Reads an update's header without decoding the body (checks magic and header schema). */
export function readUpdateHeader(bytes: Uint8Array): { header: UpdateHeader; bodyOffset: number } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 4).equals(MAGIC)) throw new ModelUpdateError('not a fedmed model update (bad magic)');
  const headerLength = buf.readUInt32LE(4);
  if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > buf.length) throw new ModelUpdateError(`model update header length ${headerLength} is invalid or truncated`);
  let header: UpdateHeader;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLength).toString('utf8')) as UpdateHeader;
  } catch {
    throw new ModelUpdateError('model update header is not JSON');
  }
  const hex = (v: unknown): boolean => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  const ok =
    header?.format === UPDATE_FORMAT &&
    (header.kind === 'full' ? header.transform === 'none' && header.base === null : header.kind === 'delta' && (header.transform === 'sub' || header.transform === 'xor') && hex(header.base)) &&
    (header.codec === 'br' || header.codec === 'deflate') &&
    Number.isSafeInteger(header.count) &&
    header.count > 0 &&
    header.count <= 1 << 28 &&
    hex(header.target);
  if (!ok) throw new ModelUpdateError('model update header is malformed');
  return { header, bodyOffset: 8 + headerLength };
}

/**
 * The most bytes an update of `count` parameters can take: the raw vector, the worst-case
 * expansion of deflate or brotli on incompressible data (well under 1%), and the header.
 */
export function maxUpdateBytes(count: number): number {
  return Math.ceil(count * 4 * 1.01) + 8 + MAX_HEADER_BYTES + 1024;
}

/**
 * Decodes an update to the params it produces. A delta needs `base` (checked against the
 * header's base hash); the result is checked against the header's target hash. With
 * `expectedCount` (the receiver's spec), an update for another size is refused before
 * anything is inflated.
 */
export function decodeModelUpdate(bytes: Uint8Array, base: Float32Array | null, expectedCount?: number): { params: Float32Array; header: UpdateHeader } {
  const { header, bodyOffset } = readUpdateHeader(bytes);
  if (expectedCount !== undefined && header.count !== expectedCount) throw new ModelUpdateError(`the update is for ${header.count} parameters; the model has ${expectedCount}`);
  if (header.kind === 'delta') {
    if (!base) throw new ModelUpdateError(`this update is a delta against params ${header.base!.slice(0, 12)}…, which this site does not hold`);
    if (base.length !== header.count) throw new ModelUpdateError(`delta is for ${header.count} parameters, the base model has ${base.length}`);
    if (paramsSha256(base) !== header.base) throw new ModelUpdateError(`delta is against params ${header.base!.slice(0, 12)}…, not the base model given`);
  }
  const body = bytes.subarray(bodyOffset);
  let raw: Buffer;
  try {
    const maxOutputLength = header.count * 4;
    raw = header.codec === 'br' ? brotliDecompressSync(body, { maxOutputLength }) : inflateRawSync(body, { maxOutputLength });
  } catch (err) {
    throw new ModelUpdateError(`model update body does not decompress (truncated or corrupted): ${(err as Error).message}`);
  }
  if (raw.length !== header.count * 4) throw new ModelUpdateError(`model update body holds ${raw.length} bytes, expected ${header.count * 4} (truncated or corrupted)`);
  const words = unshuffle(raw, header.count);
  if (header.kind === 'delta') applyDelta(words, new Uint32Array(base!.buffer, base!.byteOffset, base!.length), header.transform as UpdateTransform);
  const params = new Float32Array(words.buffer, words.byteOffset, words.length);
  const sha = createHash('sha256').update(float32Bytes(params)).digest('hex');
  if (sha !== header.target) throw new ModelUpdateError(`decoded params hash ${sha.slice(0, 12)}… differs from the update's target ${header.target.slice(0, 12)}… (corrupted update)`);
  return { params, header };
}

function frame(header: Omit<UpdateHeader, 'format'>, body: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify({ format: UPDATE_FORMAT, ...header }), 'utf8');
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length, 0);
  return Buffer.concat([MAGIC, len, json, body]);
}

function deltaWords(target: Uint32Array, base: Uint32Array, transform: UpdateTransform): Uint32Array {
  const out = new Uint32Array(target.length);
  if (transform === 'xor') {
    for (let i = 0; i < out.length; i++) out[i] = target[i] ^ base[i];
  } else {
    for (let i = 0; i < out.length; i++) {
      const d = (target[i] - base[i]) | 0;
      out[i] = (d << 1) ^ (d >> 31); // zig-zag
    }
  }
  return out;
}

/** Turns delta words back into the target's words, in place. */
function applyDelta(words: Uint32Array, base: Uint32Array, transform: UpdateTransform): void {
  if (transform === 'xor') {
    for (let i = 0; i < words.length; i++) words[i] ^= base[i];
  } else {
    for (let i = 0; i < words.length; i++) {
      const z = words[i];
      words[i] = (base[i] + ((z >>> 1) ^ -(z & 1))) | 0;
    }
  }
}

/** Byte planes: all first bytes, then all second bytes, ... (little-endian words). */
function shuffle(words: Uint32Array): Buffer {
  const n = words.length;
  const out = Buffer.allocUnsafe(n * 4);
  for (let i = 0; i < n; i++) {
    const w = words[i];
    out[i] = w & 255;
    out[n + i] = (w >>> 8) & 255;
    out[2 * n + i] = (w >>> 16) & 255;
    out[3 * n + i] = w >>> 24;
  }
  return out;
}

function unshuffle(planes: Buffer, n: number): Uint32Array {
  const words = new Uint32Array(n);
  for (let i = 0; i < n; i++) words[i] = (planes[i] | (planes[n + i] << 8) | (planes[2 * n + i] << 16) | (planes[3 * n + i] << 24)) >>> 0;
  return words;
}

function compress(bytes: Buffer, codec: UpdateCodec, level: number | undefined, count: number): Buffer {
  if (codec === 'deflate') return deflateRawSync(bytes, { level: level ?? 6 });
  return brotliCompressSync(bytes, {
    params: {
      [zlibConstants.BROTLI_PARAM_QUALITY]: level ?? 5,
      [zlibConstants.BROTLI_PARAM_LGWIN]: 24,
      [zlibConstants.BROTLI_PARAM_SIZE_HINT]: count * 4,
    },
  });
}
