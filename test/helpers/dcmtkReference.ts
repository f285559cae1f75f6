/**
 * Reference pixels for the sample files, independent of the decoder under test: dcmtk decompresses
 * each file to Explicit VR Little Endian (dcmdjpeg, dcmdrle, dcmdjpls, dcmconv +te) and the stored
 * values are read back with dicom-parser. dcmtk 3.6.7 has no JPEG 2000: those files are checked
 * against committed checksums instead.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import dicomParser from 'dicom-parser';

/**
 * sha256 of the decoded Int32 pixels (little-endian bytes) of the JPEG 2000 files, which dcmtk
 * 3.6.7 cannot decode. Computed with dcmjs-codecs; RG3_J2KR's value was cross-checked against
 * Debian's OpenJPEG 2.5.0 `opj_decompress` on the extracted codestream (identical), and
 * MR_small_jp2klossless's equals MR_small.dcm's (dcmtk-checked). Min/max match the manifest.
 */
export const J2K_SHA256: Record<string, string> = {
  'RG3_J2KR.dcm': '147dc159154527a05f6a06e30501dbea42c60fe375f427f10e7e61534a8c73c4',
  'MR_small_jp2klossless.dcm': 'b8d9a6cee6ff2ea9edbe8b476e54b80cfab8c6a15aff4d431b6c38840a20f7df',
};

/** One entry of ../shared/data/dicom_samples/dicom_manifest.json. */
export interface ManifestEntry {
  file: string;
  transfer_syntax_uid: string;
  modality: string;
  rows: number;
  columns: number;
  bits_allocated: number;
  bits_stored: number;
  pixel_representation: number;
  photometric: string;
  pixel_min: number;
  pixel_max: number;
  patient_name: string;
  patient_id: string;
  series_instance_uid: string;
}

export function readManifest(samplesDir: string): ManifestEntry[] {
  return JSON.parse(readFileSync(join(samplesDir, 'dicom_manifest.json'), 'utf8')) as ManifestEntry[];
}

export function fileBytes(file: string): Uint8Array {
  const b = readFileSync(file);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** dcmtk's tool that writes this syntax as uncompressed Explicit VR Little Endian, or null for JPEG 2000. */
export function dcmtkCommand(ts: string, input: string, output: string): [string, string[]] | null {
  if (ts === '1.2.840.10008.1.2.5') return ['dcmdrle', [input, output]];
  if (/^1\.2\.840\.10008\.1\.2\.4\.(50|51|57|70)$/.test(ts)) return ['dcmdjpeg', [input, output]];
  if (/^1\.2\.840\.10008\.1\.2\.4\.8[01]$/.test(ts)) return ['dcmdjpls', [input, output]];
  if (/^1\.2\.840\.10008\.1\.2\.4\.9[01]$/.test(ts)) return null; // dcmtk 3.6.7 has no JPEG 2000
  return ['dcmconv', ['+te', input, output]];
}

/** dcmtk's decompressed output of `input` (a file in `tmpDir`), or null for JPEG 2000. Throws when the tool fails. */
export function dcmtkDecompress(ts: string, input: string, tmpDir: string): string | null {
  const out = join(tmpDir, `${basename(input).replace(/\.dcm$/, '')}-${createHash('sha256').update(input).digest('hex').slice(0, 8)}.dcmtk.dcm`);
  const cmd = dcmtkCommand(ts, input, out);
  if (!cmd) return null;
  const r = spawnSync(cmd[0], cmd[1], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd[0]} ${basename(input)} failed: ${r.stderr}`);
  return out;
}

/** Frame 1 of dcmtk's uncompressed output: its stored values and the raw Pixel Data bytes. */
export interface DcmtkFrame {
  /** Stored values (masked to Bits Stored, shifted, sign-extended), interleaved samples. */
  values: Int32Array;
  /** The first rows*columns*samples*bitsAllocated/8 bytes of Pixel Data, as dcmtk wrote them. */
  raw: Uint8Array;
  bitsAllocated: number;
  planarConfiguration: number;
}

/** Reads frame 1 of a file dcmtk wrote as Explicit VR Little Endian (stored values and raw bytes). */
export function dcmtkFrame(file: string): DcmtkFrame {
  const ds = dicomParser.parseDicom(fileBytes(file));
  assert.equal(ds.string('x00020010'), '1.2.840.10008.1.2.1', `${file}: dcmtk did not write explicit VR LE`);
  const rows = ds.uint16('x00280010')!;
  const cols = ds.uint16('x00280011')!;
  const spp = ds.uint16('x00280002') ?? 1;
  const ba = ds.uint16('x00280100')!;
  const bs = ds.uint16('x00280101')!;
  const hb = ds.uint16('x00280102') ?? bs - 1;
  const planar = spp > 1 ? (ds.uint16('x00280006') ?? 0) : 0;
  const signed = ds.uint16('x00280103') === 1;
  const el = ds.elements.x7fe00010;
  const n = rows * cols * spp;
  const out = new Int32Array(n);
  const view = new DataView(ds.byteArray.buffer, ds.byteArray.byteOffset + el.dataOffset, n * (ba / 8));
  for (let i = 0; i < n; i++) {
    const src = planar === 1 ? (i % spp) * rows * cols + Math.floor(i / spp) : i;
    const raw = ba === 8 ? view.getUint8(src) : view.getUint16(src * 2, true);
    let v = Math.floor(raw / 2 ** (hb - bs + 1)) % 2 ** bs;
    if (signed && v >= 2 ** (bs - 1)) v -= 2 ** bs;
    out[i] = v;
  }
  return { values: out, raw: new Uint8Array(ds.byteArray.subarray(el.dataOffset, el.dataOffset + n * (ba / 8))), bitsAllocated: ba, planarConfiguration: planar };
}

/** Stored values from dcmtk's uncompressed output (frame 1). */
export function dcmtkPixels(file: string): Int32Array {
  return dcmtkFrame(file).values;
}

/** sha256 (hex) of Int32 values' little-endian bytes: the form J2K_SHA256 is in. */
export function sha256Int32(a: Int32Array): string {
  return createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
}

/** Values as little-endian two's complement integers of bitsAllocated/8 bytes (the form of a case's pixel bytes). */
export function littleEndianBytes(values: Int32Array, bitsAllocated: number): Uint8Array {
  const width = bitsAllocated / 8;
  const out = new Uint8Array(values.length * width);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) {
    if (width === 1) view.setInt8(i, (values[i] << 24) >> 24);
    else view.setInt16(i * 2, (values[i] << 16) >> 16, true);
  }
  return out;
}
