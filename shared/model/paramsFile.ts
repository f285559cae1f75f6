/**
 * The parameters file format (.fmp):
 *
 *   8 bytes  magic "FEDMEDP1"
 *   u32 LE   header length in bytes (<= 1 MiB)
 *   header   UTF-8 JSON: {format, dtype:"float32", count, spec, specHash, layout, sha256}
 *   payload  count float32 values, little-endian
 *
 * The header carries the spec itself, so a params file is self-describing. Reading checks
 * everything (magic, header schema, payload size, SHA-256 of the payload, the embedded spec
 * against its hash and layout, and, when an expected spec is given, that it is the same model)
 * before returning a single value, so a mismatching file is refused whole.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../atomicFile.js';
import { ParamsError } from '../errors.js';
import { parseModelSpec, type ModelSpec } from './modelSpec.js';
import { specHash as hashSpec, paramsSha256, float32Bytes } from './modelHash.js';
import { layoutOf, sameLayout, type LayoutEntry, type ParameterLayout } from './parameterLayout.js';

const MAGIC = Buffer.from('FEDMEDP1', 'ascii');
const MAX_HEADER_BYTES = 1 << 20;
export const PARAMS_FORMAT = 'fedmed.params/1';

export interface ParamsHeader {
  format: typeof PARAMS_FORMAT;
  dtype: 'float32';
  count: number;
  spec: ModelSpec;
  specHash: string;
  layout: LayoutEntry[];
  sha256: string;
}

/** `known.sha256`: the params' SHA-256 when the caller already computed it (saves a pass). */
export function encodeParamsFile(spec: ModelSpec, params: Float32Array, known: { sha256?: string } = {}): Buffer {
  return Buffer.concat(paramsFileParts(spec, params, known));
}

/** The file's parts (magic and header, then a view of the parameters): written as they are, no copy. */
function paramsFileParts(spec: ModelSpec, params: Float32Array, known: { sha256?: string }): Uint8Array[] {
  const layout = layoutOf(spec);
  if (params.length !== layout.size) throw new ParamsError(`cannot save: model "${spec.name}" has ${layout.size} parameters, the vector has ${params.length}`);
  const header: ParamsHeader = {
    format: PARAMS_FORMAT,
    dtype: 'float32',
    count: params.length,
    spec,
    specHash: hashSpec(spec),
    layout: layout.entries,
    sha256: known.sha256 ?? paramsSha256(params),
  };
  const headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const lengthBytes = Buffer.alloc(4);
  lengthBytes.writeUInt32LE(headerBytes.length, 0);
  return [Buffer.concat([MAGIC, lengthBytes, headerBytes]), float32Bytes(params)];
}

/**
 * Parses a params file. With `spec`, also requires the file to belong to that spec.
 * `source` names the file in error messages.
 */
export function decodeParamsFile(bytes: Uint8Array, source: string, expected?: ModelSpec): { spec: ModelSpec; header: ParamsHeader; params: Float32Array } {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ParamsError(`${source}: not a fedmed parameters file (bad magic bytes)`);
  }
  const headerLength = buf.readUInt32LE(MAGIC.length);
  if (headerLength > MAX_HEADER_BYTES || MAGIC.length + 4 + headerLength > buf.length) {
    throw new ParamsError(`${source}: header length ${headerLength} is invalid or exceeds the file`);
  }
  const headerStart = MAGIC.length + 4;
  let header: ParamsHeader;
  try {
    header = JSON.parse(buf.subarray(headerStart, headerStart + headerLength).toString('utf8')) as ParamsHeader;
  } catch {
    throw new ParamsError(`${source}: header is not valid JSON`);
  }
  if (header === null || typeof header !== 'object' || header.format !== PARAMS_FORMAT) throw new ParamsError(`${source}: unsupported format ${JSON.stringify(header?.format)} (expected ${PARAMS_FORMAT})`);
  if (header.dtype !== 'float32') throw new ParamsError(`${source}: unsupported dtype ${JSON.stringify(header.dtype)} (expected float32)`);
  if (!Number.isInteger(header.count) || header.count < 0) throw new ParamsError(`${source}: header count is not a non-negative integer`);
  if (!Array.isArray(header.layout)) throw new ParamsError(`${source}: header has no layout`);
  const payloadStart = headerStart + headerLength;
  const payloadBytes = buf.length - payloadStart;
  if (payloadBytes !== header.count * 4) {
    throw new ParamsError(`${source}: header says ${header.count} float32 values (${header.count * 4} bytes) but the payload has ${payloadBytes} bytes (truncated or padded file)`);
  }
  // Copy into an aligned buffer we own (the payload may not be 4-byte aligned).
  const params = new Float32Array(header.count);
  new Uint8Array(params.buffer).set(buf.subarray(payloadStart));
  const actual = paramsSha256(params);
  if (actual !== header.sha256) throw new ParamsError(`${source}: payload SHA-256 ${actual} does not match the header's ${header.sha256} (corrupted file)`);
  const fileLayout: ParameterLayout = { entries: header.layout, size: header.count };
  let spec: ModelSpec;
  try {
    spec = parseModelSpec(header.spec, `${source}: embedded spec`);
  } catch (err) {
    throw new ParamsError((err as Error).message);
  }
  if (hashSpec(spec) !== header.specHash) throw new ParamsError(`${source}: embedded spec does not match the header's spec hash (edited or corrupted header)`);
  if (!sameLayout(fileLayout, layoutOf(spec))) throw new ParamsError(`${source}: header layout does not match the embedded spec of model "${spec.name}"`);
  if (expected) {
    const expectedHash = hashSpec(expected);
    if (header.specHash !== expectedHash) throw new ParamsError(`${source}: parameters belong to a different model (file: "${spec.name}" spec ${header.specHash.slice(0, 12)}, expected: "${expected.name}" spec ${expectedHash.slice(0, 12)})`);
  }
  return { spec, header, params };
}

/** Writes a params file atomically (temporary file + rename): readers never see half a file. Owner-only unless `mode` says otherwise. */
export function saveParamsFile(path: string, spec: ModelSpec, params: Float32Array, known: { sha256?: string } = {}, mode = 0o600): void {
  writeFileAtomic(path, paramsFileParts(spec, params, known), mode);
}

export function loadParamsFile(path: string, expected?: ModelSpec): { spec: ModelSpec; params: Float32Array } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new ParamsError(`${path}: cannot read parameters file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const { spec, params } = decodeParamsFile(bytes, path, expected);
  return { spec, params };
}
