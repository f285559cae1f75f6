import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DicomError, ModelSpecError } from '../../../shared/errors.js';
import { defaultInputSpec, inputSpecHash, parseInputSpec, type InputSpec } from '../../../shared/model/inputSpec.js';
import { decodeDicom, initDicomCodecs } from '../../../edge-client/dicom/dicomDecoder.js';
import type { DecodedInstance } from '../../../edge-client/dicom/dicomTypes.js';
import { linearWindow, preprocess } from '../../../edge-client/dicom/preprocess.js';
import { sharedDataFile } from '../../helpers/paths.js';

function instance(rows: number, columns: number, values: number[], o: Partial<{ photometric: string; modality: string | null; slope: number; intercept: number; window: { center: number; width: number } | null; samplesPerPixel: number; bitsStored: number }> = {}): DecodedInstance {
  const spp = o.samplesPerPixel ?? 1;
  assert.equal(values.length, rows * columns * spp);
  return {
    uids: { sopInstanceUid: '1.2.3', studyInstanceUid: '1.2.4', seriesInstanceUid: '1.2.5' },
    metadata: {
      modality: o.modality === undefined ? 'CT' : o.modality,
      bodyPart: null,
      manufacturer: null,
      manufacturerModel: null,
      sopClassUid: null,
      transferSyntax: '1.2.840.10008.1.2.1',
      rows,
      columns,
      bitsAllocated: 16,
      bitsStored: o.bitsStored ?? 16,
      pixelRepresentation: 1,
      photometric: o.photometric ?? (spp === 3 ? 'RGB' : 'MONOCHROME2'),
      samplesPerPixel: spp,
      frames: 1,
    },
    pixels: Int32Array.from(values),
    rescale: { slope: o.slope ?? 1, intercept: o.intercept ?? 0 },
    window: o.window === undefined ? null : o.window,
  };
}

function spec(o: Partial<InputSpec> = {}): InputSpec {
  return { window: 'min-max', invert: 'monochrome1', size: [2, 2], channels: 1, normalise: 'unit', ...o };
}

const close = (a: ArrayLike<number>, b: number[], eps = 1e-6): void => {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= eps, `[${i}] ${a[i]} vs ${b[i]}`);
};

describe('edge-client/dicom: preprocess', () => {
  it('applies the DICOM linear VOI function (PS3.3 C.11.2.1.2.1)', () => {
    // c=40, w=400: x <= -160 → 0, x > 239 → 1, else ((x - 39.5) / 399 + 0.5).
    assert.equal(linearWindow(-160, 40, 400), 0);
    assert.equal(linearWindow(-159, 40, 400), (-159 - 39.5) / 399 + 0.5);
    assert.equal(linearWindow(39.5, 40, 400), 0.5);
    assert.equal(linearWindow(239, 40, 400), 1);
    assert.equal(linearWindow(240, 40, 400), 1);
    // Width 1 is a threshold at c - 0.5.
    assert.equal(linearWindow(9.5, 10, 1), 0);
    assert.equal(linearWindow(9.6, 10, 1), 1);
    const out = preprocess(instance(2, 2, [-1000, 0, 40, 1000]), spec({ window: { center: 40, width: 400 } }));
    close(out, [0, (0 - 39.5) / 399 + 0.5, (40 - 39.5) / 399 + 0.5, 1]);
  });

  it('rescales before windowing, and takes the header window for "from-header"', () => {
    // stored 1000..1100 with slope 2, intercept -2048 → -48..152 HU.
    const d = instance(2, 2, [1000, 1024, 1050, 1100], { slope: 2, intercept: -2048, window: { center: 50, width: 201 } });
    const expected = [-48, 0, 52, 152].map((x) => linearWindow(x, 50, 201));
    close(preprocess(d, spec({ window: 'from-header' })), expected);
    close(preprocess(d, spec({ window: { center: 50, width: 201 } })), expected);
  });

  it('"from-header" without a header window falls back to min-max; a constant image is all 0', () => {
    const d = instance(2, 2, [10, 20, 30, 50]);
    close(preprocess(d, spec({ window: 'from-header' })), [0, 0.25, 0.5, 1]);
    close(preprocess(d, spec({ window: 'min-max' })), [0, 0.25, 0.5, 1]);
    close(preprocess(instance(2, 2, [7, 7, 7, 7]), spec()), [0, 0, 0, 0]);
  });

  it('inverts MONOCHROME1 (after windowing), not MONOCHROME2, and never with invert "never"', () => {
    const m1 = instance(2, 2, [10, 20, 30, 50], { photometric: 'MONOCHROME1' });
    close(preprocess(m1, spec()), [1, 0.75, 0.5, 0]);
    close(preprocess(m1, spec({ invert: 'never' })), [0, 0.25, 0.5, 1]);
    close(preprocess(instance(2, 2, [10, 20, 30, 50]), spec()), [0, 0.25, 0.5, 1]);
  });

  it('shrinks by area averaging and grows bilinearly (half-pixel centres)', () => {
    // 4x4 values 0..15 min-max → v/15; 2x2 area means of each 2x2 block.
    const d = instance(4, 4, Array.from({ length: 16 }, (_, i) => i));
    close(preprocess(d, spec({ size: [2, 2] })), [2.5, 4.5, 10.5, 12.5].map((v) => v / 15));
    close(preprocess(d, spec({ size: [1, 1] })), [7.5 / 15]);
    // 3 → 2 (non-integer ratio): output 0 covers source [0, 1.5): (v0 + 0.5 v1) / 1.5.
    const row = instance(1, 3, [0, 3, 6]);
    close(preprocess(row, spec({ size: [1, 2] })), [(0 + 0.5 * 0.5) / 1.5, (0.5 * 0.5 + 1) / 1.5]);
    // 1x2 → 1x4 bilinear: source x = (i + 0.5) / 2 - 0.5 → -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
    const grow = instance(1, 2, [0, 10]);
    close(preprocess(grow, spec({ size: [1, 4] })), [0, 0.25, 0.75, 1]);
  });

  it('outputs NHWC: grey replicated to 3 channels; RGB to grey by luma', () => {
    const g = preprocess(instance(1, 2, [0, 10]), spec({ size: [1, 2], channels: 3 }));
    close(g, [0, 0, 0, 1, 1, 1]);
    const rgb = instance(1, 2, [255, 0, 0, 0, 0, 255], { samplesPerPixel: 3, bitsStored: 8 });
    close(preprocess(rgb, spec({ size: [1, 2], channels: 1 })), [0.299, 0.114]);
    close(preprocess(rgb, spec({ size: [1, 2], channels: 3 })), [1, 0, 0, 0, 0, 1]);
    const ybr = instance(1, 1, [128, 128, 128], { samplesPerPixel: 3, bitsStored: 8, photometric: 'YBR_FULL' });
    close(preprocess(ybr, spec({ size: [1, 1], channels: 3 })), [128 / 255, 128 / 255, 128 / 255]);
  });

  it('refuses a modality the spec does not list (and a missing one)', () => {
    const mr = instance(2, 2, [1, 2, 3, 4], { modality: 'MR' });
    assert.throws(() => preprocess(mr, spec({ modality: ['CT', 'CR'] })), (e: unknown) => e instanceof DicomError && /Modality \(0008,0060\) MR/.test(e.message));
    assert.throws(() => preprocess(mr, spec({ modality: 'CT' })), DicomError);
    assert.throws(() => preprocess(instance(2, 2, [1, 2, 3, 4], { modality: null }), spec({ modality: 'CT' })), DicomError);
    assert.equal(preprocess(mr, spec({ modality: ['MR'] })).length, 4);
  });

  it('is pure and deterministic on a real image (same bytes twice, input untouched)', async function () {
    const file = sharedDataFile('dicom_samples/RG3_J2KR.dcm');
    if (!file) {
      console.log('      skipped: ../shared/data/dicom_samples not present (development data)');
      return this.skip();
    }
    await initDicomCodecs();
    const d = decodeDicom(new Uint8Array(readFileSync(file)));
    const before = Buffer.from(d.pixels.buffer).toString('base64');
    const s = defaultInputSpec([64, 48, 1]);
    const a = preprocess(d, s);
    const b = preprocess(d, s);
    assert.equal(a.length, 64 * 48);
    assert.deepEqual(Buffer.from(a.buffer), Buffer.from(b.buffer));
    assert.equal(Buffer.from(d.pixels.buffer).toString('base64'), before);
    assert.ok(a.every((v) => v >= 0 && v <= 1));
    // MONOCHROME1 with the header window: inverted, so the mean is not the raw one.
    const raw = preprocess(d, { ...s, invert: 'never' });
    close(a, Array.from(raw, (v) => 1 - v), 1e-6);
  });
});

describe('shared/model: InputSpec', () => {
  it('parses a valid spec, rejects bad fields with ModelSpecError naming them', () => {
    const s = parseInputSpec({ modality: ['CR', 'DX'], window: { center: 40, width: 400 }, invert: 'never', size: [224, 224], channels: 3, normalise: 'unit' }, 'spec.json');
    assert.deepEqual(s.size, [224, 224]);
    assert.deepEqual(parseInputSpec({ window: 'from-header', invert: 'monochrome1', size: [28, 28], channels: 1, normalise: 'unit' }, 'x').modality, undefined);
    const bad: [unknown, RegExp][] = [
      [null, /must be an object/],
      [{ window: 'auto', invert: 'never', size: [1, 1], channels: 1, normalise: 'unit' }, /"window"/],
      [{ window: { center: 1, width: 0 }, invert: 'never', size: [1, 1], channels: 1, normalise: 'unit' }, /window\.width/],
      [{ window: 'min-max', invert: 'yes', size: [1, 1], channels: 1, normalise: 'unit' }, /"invert"/],
      [{ window: 'min-max', invert: 'never', size: [0, 1], channels: 1, normalise: 'unit' }, /"size"/],
      [{ window: 'min-max', invert: 'never', size: [1, 1], channels: 2, normalise: 'unit' }, /"channels"/],
      [{ window: 'min-max', invert: 'never', size: [1, 1], channels: 1, normalise: 'z' }, /"normalise"/],
      [{ window: 'min-max', invert: 'never', size: [1, 1], channels: 1, normalise: 'unit', extra: 1 }, /unknown input spec field "extra"/],
      [{ modality: [], window: 'min-max', invert: 'never', size: [1, 1], channels: 1, normalise: 'unit' }, /"modality"/],
    ];
    for (const [v, re] of bad) assert.throws(() => parseInputSpec(v, 'spec.json'), (e: unknown) => e instanceof ModelSpecError && re.test(e.message) && e.message.startsWith('spec.json'));
  });

  it('defaults from an input shape; hashes canonically', () => {
    assert.deepEqual(defaultInputSpec([28, 28, 1]), { window: 'from-header', invert: 'monochrome1', size: [28, 28], channels: 1, normalise: 'unit' });
    assert.throws(() => defaultInputSpec([10]), ModelSpecError);
    assert.throws(() => defaultInputSpec([28, 28, 2]), ModelSpecError);
    const a = inputSpecHash({ window: 'min-max', invert: 'never', size: [2, 2], channels: 1, normalise: 'unit' });
    const b = inputSpecHash({ normalise: 'unit', channels: 1, size: [2, 2], invert: 'never', window: 'min-max' });
    assert.equal(a, b);
    assert.match(a, /^[0-9a-f]{64}$/);
    assert.notEqual(a, inputSpecHash({ window: 'min-max', invert: 'never', size: [2, 3], channels: 1, normalise: 'unit' }));
  });
});
