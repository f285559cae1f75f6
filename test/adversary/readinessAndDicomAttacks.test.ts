/**
 * Review attacks on the site readiness report (data_status) and on the inline DICOM decode of
 * small uncompressed objects. Real code throughout: the site's own SiteRules + DataStatusReporter
 * (what a hostile coordinator gets to see), the coordinator's SiteReadiness, and the DecodePool
 * with real DICOM written by dcmjs.
 *
 * Found in review, fixed, and held here:
 *   - a 450 KB tall-and-thin uncompressed object (65535 x 7, 8-bit) was decoded on the edge's
 *     main thread at many times a normal image's cost (the resize's intermediate plane was
 *     rows x output width doubles, ~117 MB for a 224-wide input): it now goes to a worker
 *     (inline needs both sides <= 1024) and the resize takes the smaller intermediate;
 *   - a bucketed site told the exact count each time it crossed a bucket boundary going up and
 *     down, and `ready` the moment it crossed its minimum inside a bucket: buckets are now sticky
 *     downwards and `ready` follows the told count;
 *   - the coordinator announced every re-sent identical status: now only changes.
 * Defences that held from the start: deflate disguised as explicit LE, a bare dataset, huge Rows x Columns with
 * little data, transfer syntax mismatch: all fail fast or go to a worker; an invalid or DP-only
 * policy never lets counts out.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import dicomParser from 'dicom-parser';
import { DecodePool } from '../../edge-client/dicom/decodePool.js';
import { isSmallUncompressed } from '../../edge-client/dicom/dicomDecoder.js';
import { DataStatusReporter, type SplitCounts } from '../../edge-client/federation/dataStatusReporter.js';
import { defaultPolicy, type SitePolicy } from '../../edge-client/policy/sitePolicy.js';
import { SiteRules } from '../../edge-client/policy/siteRules.js';
import { SiteReadiness } from '../../coordinator/siteReadiness.js';
import type { InputSpec } from '../../shared/model/inputSpec.js';
import type { DataStatus, Message, MessageOf } from '../../shared/protocol/messages.js';
import { writeCrImage } from '../helpers/dicomWriter.js';
import { makeTempDir } from '../helpers/paths.js';

const SPEC: InputSpec = { window: 'min-max', invert: 'monochrome1', size: [224, 224], channels: 1, normalise: 'unit' };

function image(rows: number, columns: number, bits: 8 | 16): Buffer {
  const pixels = bits === 8 ? new Uint8Array(rows * columns) : new Uint16Array(rows * columns);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7) % 200;
  return writeCrImage({ rows, columns, pixels, patientName: 'DOE^JANE', patientId: 'P1' });
}

/** Where the dataset starts after the file meta group. */
function metaEnd(p10: Uint8Array): number {
  const meta = dicomParser.readPart10Header(p10);
  return Math.max(...Object.values(meta.elements).map((e) => e.dataOffset + e.length));
}

/** Milliseconds the calling thread spends inside decodeAndPreprocess before it returns (the event loop is blocked that long), best of n. */
async function blockedMs(pool: DecodePool, p10: Uint8Array, n: number): Promise<number> {
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const copy = new Uint8Array(p10); // (a copy: a worker takes its bytes)
    const t = performance.now();
    const pending = pool.decodeAndPreprocess(copy, SPEC);
    best = Math.min(best, performance.now() - t);
    await pending.catch(() => {});
  }
  return best;
}

describe('adversary: DICOM inline decode of small uncompressed objects', function () {
  this.timeout(20_000);
  let pool: DecodePool;
  afterEach(async () => pool?.close());

  it('HOLDS: a 450 KB tall-thin object (65535 x 7) goes to a worker, not the main thread, and resizes through a small intermediate', async () => {
    pool = new DecodePool({ size: 1 });
    const normal = image(256, 256, 16); // ~130 KB, the common case the inline path is for
    const tall = image(65535, 7, 8); // ~450 KB, under the 512 KiB inline limit
    assert.ok(tall.length <= 512 * 1024);
    assert.equal(isSmallUncompressed(normal, 1024), true);
    assert.equal(isSmallUncompressed(tall, 1024), false, 'the crafted object does not take the inline path');
    const owned = new Uint8Array(tall);
    const pending = pool.decodeAndPreprocess(owned, SPEC);
    assert.equal(owned.byteLength, 0, 'transferred to a worker');
    const heapBefore = process.memoryUsage().rss;
    const r = await pending;
    assert.equal(r.input.length, 224 * 224);
    const normalMs = await blockedMs(pool, normal, 3);
    const tallMs = await blockedMs(pool, tall, 2);
    console.log(`      main thread blocked: normal 256x256x16 ${normalMs.toFixed(1)} ms, crafted 65535x7x8 ${tallMs.toFixed(1)} ms; rss +${((process.memoryUsage().rss - heapBefore) / 2 ** 20).toFixed(0)} MB`);
    assert.ok(tallMs < Math.max(20, 2 * normalMs), `the crafted object blocked the caller ${tallMs} ms`);
  });

  it('HOLDS: deflate disguised as explicit LE, a bare dataset, Rows x Columns without the data, a syntax mismatch: fast rejection or a worker', async () => {
    pool = new DecodePool({ size: 1 });
    const ok = image(64, 64, 8);
    const end = metaEnd(ok);
    // 1. the dataset deflated while the meta says Explicit VR LE: its Rows/Columns do not parse,
    //    so not inline; the worker refuses it, and the caller is not held up meanwhile
    const disguised = Buffer.concat([ok.subarray(0, end), deflateRawSync(ok.subarray(end))]);
    assert.equal(isSmallUncompressed(disguised, 1024), false);
    let t = performance.now();
    const refused = pool.decodeAndPreprocess(disguised, SPEC);
    assert.ok(performance.now() - t < 50);
    await assert.rejects(refused);
    // 2. a bare dataset (no preamble, no meta): not inline (a worker decides)
    assert.equal(isSmallUncompressed(ok.subarray(end), 1024), false);
    // 3. Rows x Columns 8192 x 8192 claimed over a few bytes: refused before any allocation
    const huge = image(2, 2, 8);
    const rows = huge.indexOf(Buffer.from([0x28, 0x00, 0x10, 0x00, 0x55, 0x53, 0x02, 0x00]));
    assert.ok(rows > 0);
    huge.writeUInt16LE(8192, rows + 8);
    huge.writeUInt16LE(8192, rows + 8 + 10); // Columns follows Rows
    t = performance.now();
    await assert.rejects(pool.decodeAndPreprocess(huge, SPEC), /too short/);
    assert.ok(performance.now() - t < 200);
    // 4. the meta says Explicit VR Big Endian over a little endian dataset
    const mismatch = Buffer.from(ok);
    const ts = mismatch.indexOf('1.2.840.10008.1.2.1\0');
    assert.ok(ts > 0);
    mismatch.write('1.2.840.10008.1.2.2\0', ts, 'latin1');
    t = performance.now();
    await pool.decodeAndPreprocess(mismatch, SPEC).catch(() => {});
    assert.ok(performance.now() - t < 200);
  });
});

describe('adversary: what a site tells in data_status', function () {
  this.timeout(10_000);
  const t = makeTempDir();
  after(() => t.cleanup());

  function site(change: (p: SitePolicy) => void): { rules: SiteRules; dir: string } {
    const dir = join(t.dir, `site-${Math.random().toString(36).slice(2)}`);
    mkdirSync(dir, { recursive: true });
    const p = defaultPolicy();
    change(p);
    writeFileSync(join(dir, 'policy.json'), JSON.stringify(p));
    return { rules: new SiteRules(dir, defaultPolicy(), () => {}), dir };
  }

  /** What a (hostile) coordinator receives while the labelled train count goes through `train`, one step per flush. */
  async function observe(rules: SiteRules, train: number[]): Promise<{ at: number; status: DataStatus }[]> {
    const seen: { at: number; status: DataStatus }[] = [];
    let current = 0;
    const reporter = new DataStatusReporter({
      shape: (c, previous) => rules.dataStatus(c, previous),
      send: (m: Message) => {
        const { examples, release, ready, minExamples } = m as MessageOf<'data_status'>;
        seen.push({ at: current, status: { examples, release, ready, minExamples } });
        return Promise.resolve();
      },
      minIntervalMs: 0,
    });
    reporter.connected();
    for (const n of train) {
      current = n;
      reporter.update({ train: n, validation: 0, test: 0 } satisfies SplitCounts);
      await new Promise((r) => setTimeout(r, 2));
    }
    reporter.stop();
    return seen;
  }

  it('HOLDS: bucketed counts are sticky downwards and `ready` follows them: no exact count at a boundary, none at the minimum', async () => {
    const { rules } = site((p) => {
      p.release.exampleCount = 'bucketed';
      p.release.bucketSize = 10;
      p.release.minExamples = 25;
    });
    const steps = [];
    for (let n = 17; n <= 33; n++) steps.push(n);
    steps.push(29, 30, 29, 30); // a label removed and given again
    const seen = await observe(rules, steps);
    // Told only when a bucket is reached going up (which any bucketed release tells); 25 (the
    // minimum, inside a bucket) and the 29/30 back-and-forth tell nothing.
    const crossings = seen.slice(1).map((s) => s.at);
    console.log(`      statuses sent at exact counts ${crossings.join(', ')} (bucketed values ${seen.map((s) => s.status.examples?.train).join(', ')})`);
    assert.deepEqual(crossings, [20, 30]);
    assert.deepEqual(seen.map((s) => [s.status.examples?.train, s.status.ready]), [[10, false], [20, false], [30, true]]);
    assert.ok(seen.every((s) => s.status.release === 'bucketed'));
    // A real drop of a whole bucket is told.
    const down = await observe(rules, [30, 21, 20]);
    assert.deepEqual(down.map((s) => s.status.examples?.train), [30, 20]);
  });

  it('HOLDS: a DP-only site and an invalid policy file let no count out (a DP-only site still tells when it reaches its minimum)', async () => {
    const dp = site((p) => {
      p.privacy.budget = { epsilon: 4, delta: 1e-5 };
      p.privacy.allowNonDp = false;
      p.privacy.allowedModes = p.privacy.allowedModes.filter((m) => m !== 'central');
      p.release.minExamples = 50;
    });
    const seenDp = await observe(dp.rules, [10, 49, 50, 51, 200]);
    assert.ok(seenDp.every((s) => s.status.examples === null && s.status.release === 'withheld'));
    assert.deepEqual(seenDp.map((s) => [s.at, s.status.ready]), [[10, false], [50, true]]);

    const bad = site(() => {});
    writeFileSync(join(bad.dir, 'policy.json'), JSON.stringify({ ...defaultPolicy(), release: { exampleCount: 'exact' } }));
    const seenBad = await observe(bad.rules, [5, 500]);
    assert.deepEqual(seenBad.map((s) => s.status), [{ examples: null, release: 'withheld', ready: false, minExamples: defaultPolicy().release.minExamples }]);
  });

  it('HOLDS: the coordinator announces only a changed status; a flood within the interval is dropped; no site sets another\'s', () => {
    const warns: object[] = [];
    const r = new SiteReadiness({ warn: (o) => warns.push(o) }, 50);
    const m: MessageOf<'data_status'> = { type: 'data_status', examples: { train: 1, validation: 0, test: 0 }, release: 'exact', ready: true, minExamples: 1 };
    assert.equal(r.record('hostile', m), true);
    let kept = 0;
    for (let i = 0; i < 10_000; i++) if (r.record('hostile', m)) kept++;
    assert.ok(kept <= 1, `a flood within the interval: ${kept} kept`);
    assert.equal(warns.length, 1, 'dropped floods are logged once a minute');
    const start = Date.now();
    while (Date.now() - start < 60);
    assert.equal(r.record('hostile', m), false, 'an identical status after the interval: nothing to announce');
    const later = Date.now();
    while (Date.now() - later < 60);
    assert.equal(r.record('hostile', { ...m, ready: false }), true, 'a changed one is');
    assert.equal(r.of('other'), null, 'one site cannot set another');
  });
});

