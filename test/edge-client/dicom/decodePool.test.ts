import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { DicomBusyError, DicomError } from '../../../shared/errors.js';
import type { InputSpec } from '../../../shared/model/inputSpec.js';
import { DecodePool } from '../../../edge-client/dicom/decodePool.js';
import { decodeDicom, initDicomCodecs } from '../../../edge-client/dicom/dicomDecoder.js';
import { preprocess } from '../../../edge-client/dicom/preprocess.js';
import { makeTempDir, PROJECT_ROOT, sharedDataFile } from '../../helpers/paths.js';

const SPEC: InputSpec = { window: 'from-header', invert: 'monochrome1', size: [224, 224], channels: 1, normalise: 'unit' };

function sample(name: string): Uint8Array | null {
  const f = sharedDataFile(`dicom_samples/${name}`);
  if (!f) {
    // (development data: the project must run without it, so its absence skips, in CI too)
    console.log('      skipped: ../shared/data/dicom_samples not present');
    return null;
  }
  return new Uint8Array(readFileSync(f));
}

describe('edge-client/dicom: DecodePool', () => {
  let pool: DecodePool | null = null;
  afterEach(async () => {
    await pool?.close();
    pool = null;
  });

  it('decodes the 1760x1760 JPEG 2000 in a worker without blocking the event loop', async function () {
    const rg3 = sample('RG3_J2KR.dcm');
    const mr = sample('MR_small_jp2klossless.dcm');
    if (!rg3 || !mr) return this.skip();
    pool = new DecodePool({ size: 1 });
    await pool.decodeAndPreprocess(mr.slice(), SPEC); // warm-up: the worker loads the WebAssembly

    const h = monitorEventLoopDelay({ resolution: 5 });
    h.enable();
    const t0 = performance.now();
    const r = await pool.decodeAndPreprocess(rg3.slice(), SPEC);
    const workerMs = performance.now() - t0;
    h.disable();
    const maxDelayMs = h.max / 1e6;

    await initDicomCodecs();
    const t1 = performance.now();
    const expected = preprocess(decodeDicom(rg3), SPEC);
    const mainMs = performance.now() - t1;
    console.log(`      RG3_J2KR: worker ${workerMs.toFixed(0)} ms (event-loop max delay ${maxDelayMs.toFixed(1)} ms), main thread ${mainMs.toFixed(0)} ms`);

    assert.ok(maxDelayMs < 100, `event loop blocked for ${maxDelayMs} ms`);
    assert.ok(mainMs > maxDelayMs, `the main-thread decode (${mainMs} ms) should take longer than the worst event-loop delay (${maxDelayMs} ms)`);
    assert.equal(r.decoded.metadata.rows, 1760);
    assert.equal(r.decoded.metadata.photometric, 'MONOCHROME1');
    assert.equal(r.decoded.uids.sopInstanceUid.length > 0, true);
    assert.ok(!('pixels' in r.decoded));
    assert.equal(r.input.length, 224 * 224);
    assert.deepEqual(Buffer.from(r.input.buffer), Buffer.from(expected.buffer), 'worker and main thread preprocess identically');
  });

  it('transfers a whole-buffer input (detached) and copies a view into a larger buffer', async function () {
    const mr = sample('MR_small.dcm');
    if (!mr) return this.skip();
    pool = new DecodePool({ size: 1, inlineMaxBytes: 0 });
    const owned = mr.slice();
    await pool.decodeAndPreprocess(owned, SPEC);
    assert.equal(owned.byteLength, 0, 'transferred to the worker');
    const big = new Uint8Array(mr.length + 16);
    big.set(mr, 8);
    const view = big.subarray(8, 8 + mr.length);
    await pool.decodeAndPreprocess(view, SPEC);
    assert.equal(view.byteLength, mr.length, 'a view is copied, not detached');
  });

  it('decodes a small uncompressed object on the calling thread, as the worker would; compressed ones still go to a worker', async function () {
    const mr = sample('MR_small.dcm'); // explicit VR little endian, 9.8 KB
    const rle = sample('MR_small_RLE.dcm');
    if (!mr || !rle) return this.skip();
    pool = new DecodePool({ size: 1 });
    const viaWorker = new DecodePool({ size: 1, inlineMaxBytes: 0 });
    try {
      const owned = mr.slice();
      const here = await pool.decodeAndPreprocess(owned, SPEC);
      assert.equal(owned.byteLength, mr.length, 'decoded here: nothing was transferred');
      const there = await viaWorker.decodeAndPreprocess(mr.slice(), SPEC);
      assert.deepEqual(Buffer.from(here.input.buffer), Buffer.from(there.input.buffer));
      assert.deepEqual(here.decoded, there.decoded);
      const compressed = rle.slice();
      await pool.decodeAndPreprocess(compressed, SPEC);
      assert.equal(compressed.byteLength, 0, 'RLE went to a worker (transferred)');
      await assert.rejects(pool.decodeAndPreprocess(mr.slice(), { ...SPEC, modality: 'CT' }), /Modality \(0008,0060\) MR/, 'an inline refusal is the same DicomError');
    } finally {
      await viaWorker.close();
    }
  });

  it('refuses with a DicomBusyError when the queue is full, and keeps serving', async function () {
    const rg3 = sample('RG3_J2KR.dcm');
    const mr = sample('MR_small.dcm');
    if (!rg3 || !mr) return this.skip();
    pool = new DecodePool({ size: 1, maxQueue: 1, inlineMaxBytes: 0 });
    const running = pool.decodeAndPreprocess(rg3.slice(), SPEC);
    const waiting = pool.decodeAndPreprocess(mr.slice(), SPEC);
    assert.equal(pool.queued, 1);
    await assert.rejects(pool.decodeAndPreprocess(mr.slice(), SPEC), (e: unknown) => e instanceof DicomBusyError && /queue full/.test(e.message));
    await Promise.all([running, waiting]);
    assert.equal((await pool.decodeAndPreprocess(mr.slice(), SPEC)).input.length, 224 * 224);
  });

  it('rejects an invalid object with its DicomError and keeps the worker', async function () {
    const mr = sample('MR_small.dcm');
    pool = new DecodePool({ size: 1, inlineMaxBytes: 0 });
    await assert.rejects(pool.decodeAndPreprocess(new TextEncoder().encode('not dicom'), SPEC), DicomError);
    await assert.rejects(pool.decodeAndPreprocess(new Uint8Array(8), { ...SPEC, modality: 'CT' }), DicomError);
    if (!mr) return;
    await assert.rejects(pool.decodeAndPreprocess(mr.slice(), { ...SPEC, modality: 'CT' }), /Modality \(0008,0060\) MR/);
    assert.equal((await pool.decodeAndPreprocess(mr.slice(), SPEC)).decoded.metadata.modality, 'MR');
  });

  it('close() rejects running and waiting requests, then refuses new ones', async function () {
    const rg3 = sample('RG3_J2KR.dcm');
    if (!rg3) return this.skip();
    pool = new DecodePool({ size: 1 });
    const running = assert.rejects(pool.decodeAndPreprocess(rg3.slice(), SPEC), DicomBusyError);
    const waiting = assert.rejects(pool.decodeAndPreprocess(rg3.slice(), SPEC), DicomBusyError);
    await pool.close();
    await running;
    await waiting;
    await assert.rejects(pool.decodeAndPreprocess(rg3.slice(), SPEC), /closed/);
    await pool.close(); // idempotent
  });

  it('an idle pool that was never closed does not keep the process alive', function () {
    const mr = sharedDataFile('dicom_samples/MR_small_RLE.dcm');
    const poolUrl = pathToFileURL(join(PROJECT_ROOT, 'dist/edge-client/dicom/decodePool.js')).href;
    const script = [
      `import { DecodePool } from ${JSON.stringify(poolUrl)};`,
      `import { readFileSync, writeFileSync } from 'node:fs';`,
      `const pool = new DecodePool({ size: 2 });`,
      mr ? `const r = await pool.decodeAndPreprocess(new Uint8Array(readFileSync(${JSON.stringify(mr)})), ${JSON.stringify(SPEC)});` : '',
      mr ? `console.log('decoded', r.input.length);` : `console.log('decoded', 0);`,
    ].join('\n');
    const t = makeTempDir();
    const file = join(t.dir, 'idlePool.mjs');
    writeFileSync(file, script);
    const t0 = Date.now();
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    t.cleanup();
    assert.equal(r.status, 0, `child: ${r.stderr} ${r.signal ?? ''}`);
    assert.match(r.stdout, /decoded/);
    assert.ok(Date.now() - t0 < 15_000);
  });
});
