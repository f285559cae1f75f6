import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DicomError } from '../../../shared/errors.js';
import { decodeDicom, dicomCodecsReady, initDicomCodecs, MAX_DICOM_SAMPLES } from '../../../edge-client/dicom/dicomDecoder.js';
import { hasTool } from '../../helpers/dcmtkTools.js';
import { dcmtkCommand, dcmtkPixels, fileBytes, J2K_SHA256, littleEndianBytes, sha256Int32 as sha256, type ManifestEntry } from '../../helpers/dcmtkReference.js';
import { makeTempDir, SHARED_DATA } from '../../helpers/paths.js';

const SAMPLES = join(SHARED_DATA, 'dicom_samples');
const IN_CI = Boolean(process.env.CI);
const bytes = fileBytes;

function hasDcmtk(): boolean {
  return ['dcmconv', 'dcmdjpeg', 'dcmdrle', 'dcmdjpls'].every(hasTool);
}

// --- a minimal explicit VR LE writer for hand-made objects --------------------------------------

type El = [group: number, element: number, vr: string, value: Uint8Array | string | number];

function encodeValue(vr: string, value: Uint8Array | string | number): Uint8Array {
  if (value instanceof Uint8Array) return value.length % 2 ? Uint8Array.from([...value, 0]) : value;
  if (typeof value === 'number') {
    const b = new Uint8Array(vr === 'UL' ? 4 : 2);
    if (vr === 'UL') new DataView(b.buffer).setUint32(0, value, true);
    else new DataView(b.buffer).setUint16(0, value, true);
    return b;
  }
  const s = value.length % 2 ? value + (vr === 'UI' ? '\0' : ' ') : value;
  return new TextEncoder().encode(s);
}

function encodeElements(els: El[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const [g, e, vr, v] of els) {
    const val = encodeValue(vr, v);
    const long = ['OB', 'OW', 'SQ', 'UN', 'UT'].includes(vr);
    const head = new Uint8Array(long ? 12 : 8);
    const dv = new DataView(head.buffer);
    dv.setUint16(0, g, true);
    dv.setUint16(2, e, true);
    head[4] = vr.charCodeAt(0);
    head[5] = vr.charCodeAt(1);
    if (long) dv.setUint32(8, val.length, true);
    else dv.setUint16(6, val.length, true);
    parts.push(head, val);
  }
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function part10(ts: string, dataset: El[]): Uint8Array {
  const metaBody = encodeElements([[0x0002, 0x0010, 'UI', ts]]);
  const meta = encodeElements([[0x0002, 0x0000, 'UL', metaBody.length]]);
  const ds = encodeElements(dataset);
  const out = new Uint8Array(132 + meta.length + metaBody.length + ds.length);
  out.set(new TextEncoder().encode('DICM'), 128);
  out.set(meta, 132);
  out.set(metaBody, 132 + meta.length);
  out.set(ds, 132 + meta.length + metaBody.length);
  return out;
}

function image(rows: number, cols: number, pixelBytes: Uint8Array, extra: El[] = []): El[] {
  return [
    [0x0008, 0x0018, 'UI', '1.2.3.4.5'],
    [0x0008, 0x0060, 'CS', 'CR'],
    [0x0010, 0x0010, 'PN', 'Secret^Patient'],
    [0x0020, 0x000d, 'UI', '1.2.3.4.6'],
    [0x0020, 0x000e, 'UI', '1.2.3.4.7'],
    [0x0028, 0x0002, 'US', 1],
    [0x0028, 0x0004, 'CS', 'MONOCHROME2'],
    [0x0028, 0x0010, 'US', rows],
    [0x0028, 0x0011, 'US', cols],
    [0x0028, 0x0100, 'US', 16],
    [0x0028, 0x0101, 'US', 12],
    [0x0028, 0x0102, 'US', 11],
    [0x0028, 0x0103, 'US', 0],
    ...extra,
    [0x7fe0, 0x0010, 'OW', pixelBytes],
  ];
}

// -------------------------------------------------------------------------------------------------

describe('edge-client/dicom: decodeDicom', () => {
  describe('before initDicomCodecs', () => {
    it('decodes native syntaxes, and refuses compressed ones with a DicomError naming the syntax', function () {
      if (dicomCodecsReady()) return this.skip(); // another test file in this process initialised them
      const px = new Uint8Array(8).fill(1);
      const d = decodeDicom(part10('1.2.840.10008.1.2.1', image(2, 2, px)));
      assert.deepEqual([...d.pixels], [257, 257, 257, 257].map((v) => v & 0xfff));
      const rle = part10('1.2.840.10008.1.2.5', image(2, 2, px));
      assert.throws(() => decodeDicom(rle), (e: unknown) => e instanceof DicomError && /1\.2\.840\.10008\.1\.2\.5.*initDicomCodecs/.test(e.message));
    });
  });

  describe('the sample files (../shared/data/dicom_samples)', () => {
    const present = existsSync(join(SAMPLES, 'dicom_manifest.json'));
    const manifest: ManifestEntry[] = present ? JSON.parse(readFileSync(join(SAMPLES, 'dicom_manifest.json'), 'utf8')) : [];
    const timings: string[] = [];
    let tmp: ReturnType<typeof makeTempDir>;
    let dcmtk = false;

    before(async function () {
      if (!present) {
        console.log(`      skipped: ${SAMPLES} not present (development data)`);
        return this.skip();
      }
      dcmtk = hasDcmtk();
      if (!dcmtk) {
        if (IN_CI) throw new Error('dcmtk (dcmconv, dcmdjpeg, dcmdrle, dcmdjpls) is not installed; CI needs it');
        console.log('      dcmtk not installed: comparing against the manifest min/max and the committed JPEG 2000 checksums only');
      }
      await initDicomCodecs();
      tmp = makeTempDir();
    });
    after(() => {
      tmp?.cleanup();
      if (timings.length) console.log(`      decode times:\n${timings.join('\n')}`);
    });

    it('the manifest lists every .dcm file in the folder', function () {
      const onDisk = (readdirSync(SAMPLES, { recursive: true }) as string[]).filter((f) => f.endsWith('.dcm')).map((f) => f.split('\\').join('/')).sort();
      assert.deepEqual(manifest.map((m) => m.file).sort(), onDisk);
      assert.ok(onDisk.length >= 17);
    });

    for (const m of manifest) {
      const reference = J2K_SHA256[m.file.split('/').pop()!] ? 'the committed JPEG 2000 checksum' : "dcmtk's stored values";
      it(`${m.file} (${m.transfer_syntax_uid}) decodes to ${reference}`, function () {
        const p10 = bytes(join(SAMPLES, m.file));
        const t0 = performance.now();
        const d = decodeDicom(p10);
        timings.push(`        ${m.file.padEnd(32)} ${(performance.now() - t0).toFixed(1).padStart(7)} ms`);

        assert.equal(d.metadata.transferSyntax, m.transfer_syntax_uid);
        assert.equal(d.metadata.modality, m.modality);
        assert.equal(d.metadata.rows, m.rows);
        assert.equal(d.metadata.columns, m.columns);
        assert.equal(d.metadata.bitsAllocated, m.bits_allocated);
        assert.equal(d.metadata.bitsStored, m.bits_stored);
        assert.equal(d.metadata.pixelRepresentation, m.pixel_representation);
        assert.equal(d.metadata.photometric, m.photometric);
        assert.equal(d.uids.seriesInstanceUid, m.series_instance_uid);
        assert.equal(d.pixels.length, m.rows * m.columns);
        let min = Infinity;
        let max = -Infinity;
        for (const v of d.pixels) {
          if (v < min) min = v;
          if (v > max) max = v;
        }
        assert.deepEqual([min, max], [m.pixel_min, m.pixel_max], 'pixel min/max (manifest)');
        // The pixel digest (a case's pixelHash is keyed from it) covers exactly these values, little-endian.
        assert.equal(d.uids.pixelSha256, createHash('sha256').update(littleEndianBytes(d.pixels, d.metadata.bitsAllocated)).digest('hex'));
        // PHI never leaves the decoder.
        const json = JSON.stringify({ ...d, pixels: null });
        for (const phi of [m.patient_name, m.patient_id].filter((v) => /[A-Za-z0-9]{2}/.test(v))) {
          assert.ok(!json.includes(phi), `patient name/ID "${phi}" must not be read`);
        }

        const base = m.file.split('/').pop()!;
        if (J2K_SHA256[base]) {
          assert.equal(sha256(d.pixels), J2K_SHA256[base], 'JPEG 2000 pixels (committed sha256)');
          return;
        }
        if (!dcmtk) return;
        const out = join(tmp.dir, base.replace(/\.dcm$/, '.dcmtk.dcm'));
        const cmd = dcmtkCommand(m.transfer_syntax_uid, join(SAMPLES, m.file), out);
        assert.ok(cmd);
        const r = spawnSync(cmd[0], cmd[1], { encoding: 'utf8' });
        assert.equal(r.status, 0, `${cmd[0]} failed: ${r.stderr}`);
        const ref = dcmtkPixels(out);
        assert.equal(d.pixels.length, ref.length);
        assert.ok(d.pixels.every((v, i) => v === ref[i]), `pixels differ from ${cmd[0]}'s`);
      });
    }

    it('a dataset without preamble (bare, or "DICM" at byte 0) decodes like the Part 10 file', function () {
      const p10 = bytes(join(SAMPLES, 'MR_small.dcm'));
      const full = decodeDicom(p10);
      const noPreamble = p10.subarray(128);
      assert.deepEqual(decodeDicom(noPreamble).pixels, full.pixels);
      const metaLength = new DataView(p10.buffer, p10.byteOffset).getUint32(140, true);
      const bare = p10.subarray(144 + metaLength);
      const d = decodeDicom(bare);
      assert.deepEqual(d.pixels, full.pixels);
      assert.equal(d.metadata.transferSyntax, '1.2.840.10008.1.2.1');
    });

    it('truncated pixel data → DicomError', function () {
      for (const f of ['MR_small.dcm', 'MR_small_RLE.dcm', 'RG3_J2KR.dcm', 'JPEG-LL.dcm']) {
        const p10 = bytes(join(SAMPLES, f));
        const cut = p10.slice(0, p10.length - 2000);
        assert.throws(() => decodeDicom(cut), DicomError, f);
      }
    });
  });

  describe('refusals', () => {
    before(() => initDicomCodecs());

    it('an unsupported transfer syntax → DicomError naming the UID', () => {
      const p10 = part10('1.2.840.10008.1.2.4.100', image(2, 2, new Uint8Array(8)));
      assert.throws(() => decodeDicom(p10), (e: unknown) => e instanceof DicomError && e.message.includes('unsupported transfer syntax 1.2.840.10008.1.2.4.100'));
    });

    it('a non-DICOM buffer → DicomError', () => {
      for (const b of [new Uint8Array(0), new TextEncoder().encode('hello, not DICOM'), new Uint8Array(4096).fill(0xff)]) {
        assert.throws(() => decodeDicom(b), DicomError);
      }
      const garbage = new Uint8Array(600);
      garbage.set(new TextEncoder().encode('DICM'), 128);
      garbage.fill(0xee, 132);
      assert.throws(() => decodeDicom(garbage), DicomError);
    });

    it('absurd rows/columns → DicomError before any allocation', () => {
      const p10 = part10('1.2.840.10008.1.2.1', image(65535, 65535, new Uint8Array(8), [[0x0028, 0x0008, 'IS', '1000']]));
      assert.throws(() => decodeDicom(p10), (e: unknown) => e instanceof DicomError && /too large/.test(e.message) && e.message.includes(String(MAX_DICOM_SAMPLES)));
      const zero = part10('1.2.840.10008.1.2.1', image(0, 10, new Uint8Array(8)));
      assert.throws(() => decodeDicom(zero), (e: unknown) => e instanceof DicomError && /Rows/.test(e.message));
    });

    it('pixel data shorter than one frame → DicomError naming Pixel Data', () => {
      const p10 = part10('1.2.840.10008.1.2.1', image(4, 4, new Uint8Array(8)));
      assert.throws(() => decodeDicom(p10), (e: unknown) => e instanceof DicomError && /Pixel Data \(7FE0,0010\) too short/.test(e.message));
    });

    it('missing UIDs, missing pixel data and bad bit depths → DicomError naming the tag', () => {
      const noSop = image(2, 2, new Uint8Array(8)).filter(([g, e]) => !(g === 0x0008 && e === 0x0018));
      assert.throws(() => decodeDicom(part10('1.2.840.10008.1.2.1', noSop)), /SOP Instance UID \(0008,0018\)/);
      const noPixels = image(2, 2, new Uint8Array(8)).filter(([g]) => g !== 0x7fe0);
      assert.throws(() => decodeDicom(part10('1.2.840.10008.1.2.1', noPixels)), /Pixel Data \(7FE0,0010\)/);
      const bits = image(2, 2, new Uint8Array(8)).map((el): El => (el[0] === 0x0028 && el[1] === 0x0100 ? [0x0028, 0x0100, 'US', 12] : el));
      assert.throws(() => decodeDicom(part10('1.2.840.10008.1.2.1', bits)), /Bits Allocated \(0028,0100\)/);
    });

    it('masks to Bits Stored and sign-extends signed data (as dcmtk does); reads no PHI', () => {
      // 12 bits stored, high bit 11; 0xF123 has junk above bit 11 → 0x123.
      const px = Uint8Array.from([0x23, 0xf1, 0xff, 0x0f, 0x00, 0x08, 0x01, 0x00]);
      const d = decodeDicom(part10('1.2.840.10008.1.2.1', image(2, 2, px)));
      assert.deepEqual([...d.pixels], [0x123, 0xfff, 0x800, 1]);
      assert.ok(!JSON.stringify({ ...d, pixels: null }).includes('Secret'));
      const signed = image(2, 2, px).map((el): El => (el[0] === 0x0028 && el[1] === 0x0103 ? [0x0028, 0x0103, 'US', 1] : el));
      assert.deepEqual([...decodeDicom(part10('1.2.840.10008.1.2.1', signed)).pixels], [0x123, -1, -2048, 1]);
      assert.deepEqual(decodeDicom(part10('1.2.840.10008.1.2.1', signed)).rescale, { slope: 1, intercept: 0 });
    });
  });
});
