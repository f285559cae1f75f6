/**
 * DICOM decoder: one Part 10 object (or a bare dataset) → its non-identifying metadata, the three
 * UIDs and the first frame's stored pixel values.
 *
 * - Parsing: dicom-parser. Deflated Explicit VR LE (1.2.840.10008.1.2.1.99) is inflated with
 *   node:zlib `inflateRawSync` (bounded output) through dicom-parser's `inflater` option.
 * - Native syntaxes (implicit/explicit LE, explicit BE, deflated) need no codec and decode without
 *   initialisation. Compressed syntaxes (RLE, JPEG .50/.51/.57/.70, JPEG-LS .80/.81,
 *   JPEG 2000 .90/.91) use dcmjs-codecs' WebAssembly: call `await initDicomCodecs()` once per
 *   thread first; `decodeDicom` stays synchronous and throws a DicomError naming the transfer
 *   syntax if the codecs are not initialised yet.
 * - Stored values: bits outside [highBit-bitsStored+1, highBit] are masked off and signed data is
 *   sign-extended from bitsStored, as dcmtk's DiInputPixel does.
 * - Colour (samplesPerPixel 3): samples are returned interleaved (R,G,B,R,G,B... / Y,Cb,Cr...),
 *   whatever the planar configuration on the wire. JPEG baseline/extended YBR_FULL(_422) is
 *   converted to RGB by the codec (as dcmdjpeg does by default) and `metadata.photometric` then
 *   says "RGB": the photometric always describes the returned pixels. Native YBR_*_422/420 and
 *   PALETTE COLOR are refused.
 *
 * - Pixel digest: `uids.pixelSha256` is the SHA-256 of `pixelBytes(pixels, bitsAllocated)`; it
 *   travels with the UIDs (as identifying as they are) and becomes the case's keyed pixelHash.
 *
 * PHI: only the tags listed in `TAG` are read; names, IDs, dates and private tags never are.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { inflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import type { DataSet, Element } from 'dicom-parser';
import dcmjsCodecs from 'dcmjs-codecs';
import { DicomError, errorMessage } from '../../shared/errors.js';
import type { DecodedInstance, InstanceMetadata, InstanceUids } from './dicomTypes.js';

/** Largest rows*columns*samples*frames accepted (checked before any pixel allocation). */
export const MAX_DICOM_SAMPLES = 8192 * 8192 * 3;
/** Largest inflated size of a deflated dataset (bounds a deflate bomb). */
export const MAX_INFLATED_BYTES = 512 * 1024 * 1024;

export const TRANSFER_SYNTAX = {
  implicitLE: '1.2.840.10008.1.2',
  explicitLE: '1.2.840.10008.1.2.1',
  deflatedLE: '1.2.840.10008.1.2.1.99',
  explicitBE: '1.2.840.10008.1.2.2',
  rle: '1.2.840.10008.1.2.5',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegExtended: '1.2.840.10008.1.2.4.51',
  jpegLossless: '1.2.840.10008.1.2.4.57',
  jpegLosslessSV1: '1.2.840.10008.1.2.4.70',
  jpegLsLossless: '1.2.840.10008.1.2.4.80',
  jpegLsNearLossless: '1.2.840.10008.1.2.4.81',
  jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  jpeg2000: '1.2.840.10008.1.2.4.91',
} as const;

const NATIVE_SYNTAXES: ReadonlySet<string> = new Set([
  TRANSFER_SYNTAX.implicitLE,
  TRANSFER_SYNTAX.explicitLE,
  TRANSFER_SYNTAX.deflatedLE,
  TRANSFER_SYNTAX.explicitBE,
]);

type CodecName = 'rle' | 'jpeg' | 'jpegLs' | 'jpeg2000';
const CODEC_OF_SYNTAX: ReadonlyMap<string, CodecName> = new Map<string, CodecName>([
  [TRANSFER_SYNTAX.rle, 'rle'],
  [TRANSFER_SYNTAX.jpegBaseline, 'jpeg'],
  [TRANSFER_SYNTAX.jpegExtended, 'jpeg'],
  [TRANSFER_SYNTAX.jpegLossless, 'jpeg'],
  [TRANSFER_SYNTAX.jpegLosslessSV1, 'jpeg'],
  [TRANSFER_SYNTAX.jpegLsLossless, 'jpegLs'],
  [TRANSFER_SYNTAX.jpegLsNearLossless, 'jpegLs'],
  [TRANSFER_SYNTAX.jpeg2000Lossless, 'jpeg2000'],
  [TRANSFER_SYNTAX.jpeg2000, 'jpeg2000'],
]);

/** Every transfer syntax decodeDicom accepts. */
export const SUPPORTED_TRANSFER_SYNTAXES: readonly string[] = [...NATIVE_SYNTAXES, ...CODEC_OF_SYNTAX.keys()];

/** The only tags ever read (dicom-parser's "xGGGGEEEE" keys). */
const TAG = {
  transferSyntax: 'x00020010',
  sopClassUid: 'x00080016',
  sopInstanceUid: 'x00080018',
  modality: 'x00080060',
  manufacturer: 'x00080070',
  manufacturerModel: 'x00081090',
  bodyPart: 'x00180015',
  studyInstanceUid: 'x0020000d',
  seriesInstanceUid: 'x0020000e',
  samplesPerPixel: 'x00280002',
  photometric: 'x00280004',
  planarConfiguration: 'x00280006',
  frames: 'x00280008',
  rows: 'x00280010',
  columns: 'x00280011',
  bitsAllocated: 'x00280100',
  bitsStored: 'x00280101',
  highBit: 'x00280102',
  pixelRepresentation: 'x00280103',
  windowCenter: 'x00281050',
  windowWidth: 'x00281051',
  rescaleIntercept: 'x00281052',
  rescaleSlope: 'x00281053',
  pixelData: 'x7fe00010',
} as const;

// ---------------------------------------------------------------------------------------------
// Codec initialisation (per thread: each worker has its own WebAssembly instance)

let codecsInit: Promise<void> | null = null;

/** Loads dcmjs-codecs' WebAssembly once for this thread. Idempotent; safe to call concurrently. */
export function initDicomCodecs(): Promise<void> {
  if (dcmjsCodecs.NativeCodecs.isInitialized()) return Promise.resolve();
  codecsInit ??= (async () => {
    const require = createRequire(import.meta.url);
    const wasm = require.resolve('dcmjs-codecs/build/dcmjs-native-codecs.wasm');
    dcmjsCodecs.log.setLevel('silent');
    await dcmjsCodecs.NativeCodecs.initializeAsync({ webAssemblyModulePathOrUrl: wasm, logCodecsInfo: false, logCodecsTrace: false });
  })().catch((err: unknown) => {
    codecsInit = null;
    throw new DicomError(`cannot load the dcmjs-codecs WebAssembly: ${errorMessage(err)}`, { cause: err });
  });
  return codecsInit;
}

/** True once initDicomCodecs() has completed in this thread. */
export function dicomCodecsReady(): boolean {
  return dcmjsCodecs.NativeCodecs.isInitialized();
}

// ---------------------------------------------------------------------------------------------
// Parsing

function hasAscii(bytes: Uint8Array, offset: number, text: string): boolean {
  if (bytes.length < offset + text.length) return false;
  for (let i = 0; i < text.length; i++) if (bytes[offset + i] !== text.charCodeAt(i)) return false;
  return true;
}

const VR_CODES = new Set('AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV'.split(' '));

/** Bare dataset (no preamble / DICM): explicit LE when bytes 4-5 are a VR, implicit LE otherwise. */
function guessBareSyntax(bytes: Uint8Array): string {
  const vr = bytes.length >= 6 ? String.fromCharCode(bytes[4], bytes[5]) : '';
  return VR_CODES.has(vr) ? TRANSFER_SYNTAX.explicitLE : TRANSFER_SYNTAX.implicitLE;
}

function inflater(bytes: Uint8Array, position: number): Uint8Array {
  let inflated: Buffer;
  try {
    inflated = inflateRawSync(bytes.subarray(position), { maxOutputLength: MAX_INFLATED_BYTES });
  } catch (err) {
    throw new DicomError(`cannot inflate the Deflated Explicit VR Little Endian (${TRANSFER_SYNTAX.deflatedLE}) dataset: ${errorMessage(err)}`, { cause: err });
  }
  const full = new Uint8Array(position + inflated.length);
  full.set(bytes.subarray(0, position), 0);
  full.set(inflated, position);
  return full;
}

function parseError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  if (err && typeof err === 'object' && 'exception' in err) return parseError((err as { exception: unknown }).exception);
  return String(err);
}

/** The partial data set dicom-parser attaches to its exception, when it has one. */
function partialDataSet(err: unknown): DataSet | null {
  if (err && typeof err === 'object' && 'dataSet' in err) {
    const ds = (err as { dataSet: unknown }).dataSet;
    if (ds && typeof ds === 'object' && 'elements' in ds) return ds as DataSet;
  }
  return null;
}

function parse(p10: Uint8Array): DataSet {
  if (!(p10 instanceof Uint8Array)) throw new DicomError('DICOM input must be a Uint8Array');
  let bytes = p10;
  let bareSyntax: string | undefined;
  if (!hasAscii(bytes, 128, 'DICM')) {
    if (hasAscii(bytes, 0, 'DICM')) {
      // "DICM" + meta without the 128-byte preamble: put the preamble back.
      bytes = new Uint8Array(128 + p10.length);
      bytes.set(p10, 128);
    } else if (bytes.length >= 8 && bytes[0] === 0x08 && bytes[1] === 0x00) {
      bareSyntax = guessBareSyntax(bytes); // a dataset without preamble / meta (starts at group 0008)
    } else {
      throw new DicomError('not a DICOM object: no "DICM" prefix at byte 128 (or 0) and no dataset starting at group 0008');
    }
  }
  try {
    return dicomParser.parseDicom(bytes, {
      ...(bareSyntax ? { TransferSyntaxUID: bareSyntax } : {}),
      // dicom-parser's types say void; at run time it uses the returned full byte array.
      inflater: inflater as unknown as (arr: Uint8Array, position: number) => void,
    });
  } catch (err) {
    if (err instanceof DicomError) throw err;
    // A truncated object still yields the elements read so far; keep them when Pixel Data is
    // among them so the length check below reports what is missing.
    const partial = partialDataSet(err);
    if (partial?.elements[TAG.pixelData] && partial.elements[TAG.rows]) return partial;
    throw new DicomError(`cannot parse DICOM dataset: ${parseError(err)}`, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------
// Attribute readers

function str(ds: DataSet, tag: string): string | null {
  const v = ds.elements[tag] ? ds.string(tag) : undefined;
  return v === undefined || v === '' ? null : v;
}

function requiredUid(ds: DataSet, tag: string, name: string): string {
  const v = str(ds, tag);
  if (v === null) throw new DicomError(`missing ${name} (${tagLabel(tag)})`);
  return v;
}

function tagLabel(tag: string): string {
  return `${tag.slice(1, 5).toUpperCase()},${tag.slice(5).toUpperCase()}`;
}

function us(ds: DataSet, tag: string, name: string, fallback?: number): number {
  const el = ds.elements[tag];
  const v = el && el.length >= 2 ? ds.uint16(tag) : undefined;
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new DicomError(`missing ${name} (${tagLabel(tag)})`);
  }
  return v;
}

function decimal(dataSet: DataSet, tag: string, index = 0): number | null {
  if (!dataSet.elements[tag]) return null;
  const v = dataSet.floatString(tag, index);
  return v === undefined || !Number.isFinite(v) ? null : v;
}

// ---------------------------------------------------------------------------------------------
// Pixel geometry

interface Geometry {
  rows: number;
  columns: number;
  samplesPerPixel: number;
  bitsAllocated: 8 | 16;
  bitsStored: number;
  highBit: number;
  pixelRepresentation: 0 | 1;
  planarConfiguration: 0 | 1;
  photometric: string;
  frames: number;
  /** rows*columns*samplesPerPixel. */
  samples: number;
  /** Bytes of one native frame. */
  frameBytes: number;
}

function geometry(dataSet: DataSet, transferSyntax: string): Geometry {
  const rows = us(dataSet, TAG.rows, 'Rows');
  const columns = us(dataSet, TAG.columns, 'Columns');
  const samplesPerPixel = us(dataSet, TAG.samplesPerPixel, 'Samples per Pixel', 1);
  const bitsAllocated = us(dataSet, TAG.bitsAllocated, 'Bits Allocated');
  const bitsStored = us(dataSet, TAG.bitsStored, 'Bits Stored', bitsAllocated);
  const highBit = us(dataSet, TAG.highBit, 'High Bit', bitsStored - 1);
  const pixelRepresentation = us(dataSet, TAG.pixelRepresentation, 'Pixel Representation', 0);
  const planarConfiguration = samplesPerPixel > 1 ? us(dataSet, TAG.planarConfiguration, 'Planar Configuration', 0) : 0;
  const photometric = str(dataSet, TAG.photometric) ?? (samplesPerPixel === 3 ? 'RGB' : 'MONOCHROME2');
  const framesRaw = dataSet.elements[TAG.frames] ? dataSet.intString(TAG.frames) : undefined;
  const frames = framesRaw === undefined || !Number.isFinite(framesRaw) ? 1 : framesRaw;

  if (rows < 1 || columns < 1) throw new DicomError(`Rows (0028,0010) x Columns (0028,0011) = ${rows}x${columns}: must be positive`);
  if (samplesPerPixel !== 1 && samplesPerPixel !== 3) throw new DicomError(`Samples per Pixel (0028,0002) = ${samplesPerPixel}: only 1 or 3 are supported`);
  if (bitsAllocated !== 8 && bitsAllocated !== 16) throw new DicomError(`Bits Allocated (0028,0100) = ${bitsAllocated}: only 8 or 16 are supported`);
  if (bitsStored < 1 || bitsStored > bitsAllocated) throw new DicomError(`Bits Stored (0028,0101) = ${bitsStored}: must be 1..${bitsAllocated} (Bits Allocated)`);
  if (highBit < bitsStored - 1 || highBit >= bitsAllocated) throw new DicomError(`High Bit (0028,0102) = ${highBit}: must be ${bitsStored - 1}..${bitsAllocated - 1}`);
  if (pixelRepresentation !== 0 && pixelRepresentation !== 1) throw new DicomError(`Pixel Representation (0028,0103) = ${pixelRepresentation}: must be 0 or 1`);
  if (planarConfiguration !== 0 && planarConfiguration !== 1) throw new DicomError(`Planar Configuration (0028,0006) = ${planarConfiguration}: must be 0 or 1`);
  if (!Number.isInteger(frames) || frames < 1) throw new DicomError(`Number of Frames (0028,0008) = ${framesRaw}: must be a positive integer`);
  if (samplesPerPixel === 1 && photometric !== 'MONOCHROME1' && photometric !== 'MONOCHROME2') {
    throw new DicomError(`Photometric Interpretation (0028,0004) = ${photometric} with 1 sample per pixel is not supported (only MONOCHROME1/2)`);
  }
  if (samplesPerPixel === 3 && !['RGB', 'YBR_FULL', 'YBR_FULL_422', 'YBR_PARTIAL_420', 'YBR_ICT', 'YBR_RCT'].includes(photometric)) {
    throw new DicomError(`Photometric Interpretation (0028,0004) = ${photometric} with 3 samples per pixel is not supported`);
  }
  if (samplesPerPixel === 3 && NATIVE_SYNTAXES.has(transferSyntax) && photometric !== 'RGB' && photometric !== 'YBR_FULL') {
    throw new DicomError(`Photometric Interpretation (0028,0004) = ${photometric} is not supported in native transfer syntax ${transferSyntax} (only RGB, YBR_FULL)`);
  }
  const samples = rows * columns * samplesPerPixel;
  if (samples * frames > MAX_DICOM_SAMPLES) {
    throw new DicomError(`image too large: Rows x Columns x Samples x Frames = ${rows}x${columns}x${samplesPerPixel}x${frames} exceeds ${MAX_DICOM_SAMPLES} samples`);
  }
  return {
    rows, columns, samplesPerPixel, bitsAllocated, bitsStored, highBit,
    pixelRepresentation, planarConfiguration, photometric, frames, samples,
    frameBytes: samples * (bitsAllocated / 8),
  };
}

// ---------------------------------------------------------------------------------------------
// Pixel extraction

/**
 * Stored values of one frame from its raw bytes (bitsAllocated containers, interleaved or planar):
 * masks to [highBit-bitsStored+1, highBit], sign-extends signed data, returns interleaved samples.
 */
function storedValues(raw: Uint8Array, g: Geometry, bigEndian: boolean, planar: boolean): Int32Array {
  const out = new Int32Array(g.samples);
  const shift = g.highBit - g.bitsStored + 1;
  const mask = g.bitsStored >= 32 ? -1 : (1 << g.bitsStored) - 1;
  const signBit = 1 << (g.bitsStored - 1);
  const signed = g.pixelRepresentation === 1;
  const spp = g.samplesPerPixel;
  const pixels = g.rows * g.columns;
  const trivial8 = g.bitsAllocated === 8 && shift === 0 && g.bitsStored === 8;
  const trivial16 = g.bitsAllocated === 16 && shift === 0 && g.bitsStored === 16;
  for (let i = 0; i < g.samples; i++) {
    // i: index of the output (interleaved) sample; src: index in the raw buffer.
    const src = planar ? (i % spp) * pixels + Math.floor(i / spp) : i;
    let v: number;
    if (g.bitsAllocated === 8) {
      v = raw[src];
      if (trivial8) {
        out[i] = signed ? (v << 24) >> 24 : v;
        continue;
      }
    } else {
      const o = src * 2;
      v = bigEndian ? (raw[o] << 8) | raw[o + 1] : raw[o] | (raw[o + 1] << 8);
      if (trivial16) {
        out[i] = signed ? (v << 16) >> 16 : v;
        continue;
      }
    }
    v = (v >>> shift) & mask;
    if (signed && (v & signBit) !== 0) v -= signBit * 2;
    out[i] = v;
  }
  return out;
}

function nativeFrame(dataSet: DataSet, el: Element, g: Geometry, transferSyntax: string): Int32Array {
  const bytes = dataSet.byteArray;
  const available = Math.max(0, Math.min(el.length, bytes.length - el.dataOffset));
  if (available < g.frameBytes) {
    throw new DicomError(`Pixel Data (7FE0,0010) too short: ${available} bytes, the first frame needs ${g.frameBytes} (${g.rows}x${g.columns}x${g.samplesPerPixel} at ${g.bitsAllocated} bits)`);
  }
  let raw = bytes.subarray(el.dataOffset, el.dataOffset + g.frameBytes);
  const bigEndian = transferSyntax === TRANSFER_SYNTAX.explicitBE;
  if (bigEndian && g.bitsAllocated === 8 && el.vr === 'OW') {
    // 8-bit samples in an OW element are byte-swapped in pairs in big endian.
    const swapped = new Uint8Array(raw.length + (raw.length & 1));
    for (let i = 0; i < raw.length; i += 2) {
      swapped[i] = raw[i + 1] ?? 0;
      swapped[i + 1] = raw[i];
    }
    raw = swapped.subarray(0, raw.length);
  }
  return storedValues(raw, g, bigEndian && g.bitsAllocated === 16, g.planarConfiguration === 1);
}

function firstFragmentBytes(dataSet: DataSet, el: Element, g: Geometry, transferSyntax: string): Uint8Array {
  const fragments = el.fragments ?? [];
  if (fragments.length === 0) throw new DicomError(`encapsulated Pixel Data (7FE0,0010) has no fragments (${transferSyntax})`);
  for (const f of fragments) {
    if (f.position + f.length > dataSet.byteArray.length) {
      throw new DicomError(`encapsulated Pixel Data (7FE0,0010) truncated: fragment at ${f.position} needs ${f.length} bytes, ${Math.max(0, dataSet.byteArray.length - f.position)} present (${transferSyntax})`);
    }
  }
  try {
    if (g.frames === 1) return dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, el, 0, fragments.length);
    if ((el.basicOffsetTable?.length ?? 0) > 0) return dicomParser.readEncapsulatedImageFrame(dataSet, el, 0);
    if (fragments.length === g.frames) return dicomParser.readEncapsulatedPixelDataFromFragments(dataSet, el, 0, 1);
    const codec = CODEC_OF_SYNTAX.get(transferSyntax);
    if (codec === 'jpeg') {
      const table = dicomParser.createJPEGBasicOffsetTable(dataSet, el);
      return dicomParser.readEncapsulatedImageFrame(dataSet, el, 0, table);
    }
  } catch (err) {
    throw new DicomError(`cannot read the first frame of encapsulated Pixel Data (7FE0,0010) (${transferSyntax}): ${parseError(err)}`, { cause: err });
  }
  throw new DicomError(`encapsulated Pixel Data (7FE0,0010) with ${g.frames} frames in ${fragments.length} fragments and no Basic Offset Table: cannot find frame 0 (${transferSyntax})`);
}

interface CodecResult {
  pixels: Int32Array;
  photometric: string;
}

function compressedFrame(dataSet: DataSet, el: Element, g: Geometry, transferSyntax: string, codec: CodecName): CodecResult {
  if (!dicomCodecsReady()) {
    throw new DicomError(`transfer syntax ${transferSyntax} needs the dcmjs-codecs WebAssembly: call "await initDicomCodecs()" in this thread before decodeDicom`);
  }
  if (!el.encapsulatedPixelData) throw new DicomError(`Pixel Data (7FE0,0010) is not encapsulated but the transfer syntax ${transferSyntax} is compressed`);
  const encoded = firstFragmentBytes(dataSet, el, g, transferSyntax);
  const { Context, NativeCodecs } = dcmjsCodecs;
  const ctx = new Context({
    width: g.columns,
    height: g.rows,
    bitsAllocated: g.bitsAllocated,
    bitsStored: g.bitsStored,
    samplesPerPixel: g.samplesPerPixel,
    pixelRepresentation: g.pixelRepresentation,
    planarConfiguration: g.planarConfiguration,
    photometricInterpretation: g.photometric,
    encodedBuffer: encoded,
  });
  let result: InstanceType<typeof Context>;
  try {
    switch (codec) {
      case 'rle': result = NativeCodecs.decodeRle(ctx); break;
      case 'jpeg': result = NativeCodecs.decodeJpeg(ctx, { convertColorspaceToRgb: true }); break;
      case 'jpegLs': result = NativeCodecs.decodeJpegLs(ctx); break;
      case 'jpeg2000': result = NativeCodecs.decodeJpeg2000(ctx); break;
    }
  } catch (err) {
    throw new DicomError(`cannot decode ${transferSyntax} Pixel Data (7FE0,0010): ${parseError(err)}`, { cause: err });
  }
  const decoded = result.getDecodedBuffer();
  if (!decoded || decoded.length < g.frameBytes) {
    throw new DicomError(`decoded ${transferSyntax} frame too short: ${decoded?.length ?? 0} bytes, ${g.rows}x${g.columns}x${g.samplesPerPixel} at ${g.bitsAllocated} bits needs ${g.frameBytes}`);
  }
  const planar = g.samplesPerPixel > 1 && result.getPlanarConfiguration() === 1;
  const photometric = g.samplesPerPixel > 1 ? (result.getPhotometricInterpretation() || g.photometric) : g.photometric;
  return { pixels: storedValues(decoded, g, false, planar), photometric };
}

// ---------------------------------------------------------------------------------------------
// Pixel bytes (what the pixel digest and a case's pixelHash cover)

/**
 * The first frame's stored values as bytes: exactly the values of `DecodedInstance.pixels` — rows
 * top to bottom, columns left to right, the samples of a pixel interleaved (R,G,B… / Y,Cb,Cr…,
 * i.e. planar configuration 0 whatever was on the wire; JPEG baseline/extended colour after the
 * codec's conversion to RGB, as `metadata.photometric` then says), each value masked to Bits
 * Stored, shifted down by High Bit − Bits Stored + 1 and sign-extended when Pixel Representation
 * is 1 — each written as a little-endian two's complement integer of Bits Allocated / 8 bytes
 * (1 or 2). A multi-frame image: frame 1 only (rows × columns × samples values).
 *
 * When High Bit = Bits Stored − 1 and the bits above Bits Stored are zero (unsigned) or copies of
 * the sign bit (signed) — as in every sample file — these are byte for byte the first
 * rows × columns × samples × Bits Allocated / 8 bytes of the Pixel Data that dcmtk writes when it
 * decompresses to Explicit VR Little Endian (dcmdjpeg, dcmdrle, dcmdjpls, dcmconv +te), for
 * planar configuration 0.
 */
export function pixelBytes(pixels: Int32Array, bitsAllocated: number): Uint8Array {
  if (bitsAllocated === 8) return Uint8Array.from(pixels, (v) => v & 0xff);
  if (bitsAllocated !== 16) throw new DicomError(`pixelBytes: Bits Allocated ${bitsAllocated} is not 8 or 16`);
  const out = new Uint8Array(pixels.length * 2);
  for (let i = 0; i < pixels.length; i++) {
    out[2 * i] = pixels[i] & 0xff;
    out[2 * i + 1] = (pixels[i] >> 8) & 0xff;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------

/**
 * Decodes one DICOM object. Synchronous; compressed syntaxes need `await initDicomCodecs()`
 * first (in the same thread). Every failure is a DicomError naming the tag, field or syntax.
 */
/**
 * Whether the object is cheap to decode and preprocess on the calling thread: its pixels stored
 * uncompressed (implicit/explicit LE, explicit BE; not deflated), so decoding is a copy bounded by
 * its own size, and at most `maxSide` pixels each way, which bounds the resize too (a 65535×7
 * image in 459 KB is not cheap). False when its header does not parse (the worker says why).
 */
export function isSmallUncompressed(p10: Uint8Array, maxSide: number): boolean {
  try {
    const ds = dicomParser.parseDicom(p10, { untilTag: TAG.columns });
    const ts = ds.string(TAG.transferSyntax);
    if (ts !== TRANSFER_SYNTAX.implicitLE && ts !== TRANSFER_SYNTAX.explicitLE && ts !== TRANSFER_SYNTAX.explicitBE) return false;
    const rows = ds.uint16(TAG.rows);
    const columns = ds.uint16(TAG.columns);
    return rows !== undefined && columns !== undefined && rows <= maxSide && columns <= maxSide;
  } catch {
    return false;
  }
}

export function decodeDicom(p10: Uint8Array): DecodedInstance {
  const dataSet = parse(p10);
  const transferSyntax = str(dataSet, TAG.transferSyntax);
  if (transferSyntax === null) throw new DicomError('missing Transfer Syntax UID (0002,0010)');
  const codec = CODEC_OF_SYNTAX.get(transferSyntax);
  if (!NATIVE_SYNTAXES.has(transferSyntax) && codec === undefined) {
    throw new DicomError(`unsupported transfer syntax ${transferSyntax} (supported: ${SUPPORTED_TRANSFER_SYNTAXES.join(', ')})`);
  }
  const uids: InstanceUids = {
    sopInstanceUid: requiredUid(dataSet, TAG.sopInstanceUid, 'SOP Instance UID'),
    studyInstanceUid: requiredUid(dataSet, TAG.studyInstanceUid, 'Study Instance UID'),
    seriesInstanceUid: requiredUid(dataSet, TAG.seriesInstanceUid, 'Series Instance UID'),
  };
  const el = dataSet.elements[TAG.pixelData];
  if (!el) throw new DicomError('missing Pixel Data (7FE0,0010)');
  const g = geometry(dataSet, transferSyntax);
  const frame = codec === undefined
    ? { pixels: nativeFrame(dataSet, el, g, transferSyntax), photometric: g.photometric }
    : compressedFrame(dataSet, el, g, transferSyntax, codec);

  uids.pixelSha256 = createHash('sha256').update(pixelBytes(frame.pixels, g.bitsAllocated)).digest('hex');

  const metadata: InstanceMetadata = {
    modality: str(dataSet, TAG.modality),
    bodyPart: str(dataSet, TAG.bodyPart),
    manufacturer: str(dataSet, TAG.manufacturer),
    manufacturerModel: str(dataSet, TAG.manufacturerModel),
    sopClassUid: str(dataSet, TAG.sopClassUid),
    transferSyntax,
    rows: g.rows,
    columns: g.columns,
    bitsAllocated: g.bitsAllocated,
    bitsStored: g.bitsStored,
    pixelRepresentation: g.pixelRepresentation,
    photometric: frame.photometric,
    samplesPerPixel: g.samplesPerPixel,
    frames: g.frames,
  };
  const slope = decimal(dataSet, TAG.rescaleSlope);
  const intercept = decimal(dataSet, TAG.rescaleIntercept);
  const center = decimal(dataSet, TAG.windowCenter);
  const width = decimal(dataSet, TAG.windowWidth);
  return {
    uids,
    metadata,
    pixels: frame.pixels,
    rescale: { slope: slope === null || slope === 0 ? 1 : slope, intercept: intercept ?? 0 },
    window: center !== null && width !== null && width > 0 ? { center, width } : null,
  };
}
