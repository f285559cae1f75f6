/**
 * PacsPull against a real Orthanc with its DICOMweb plugin (in a loopback-only network
 * namespace, reached through the helper's Unix-socket bridge): each instance ingested exactly
 * once, in its stored syntax (the JPEG 2000 files come back as uploaded, `transfer-syntax=*`);
 * a second pull fetches nothing; a new upload is the only thing the next pull fetches; a
 * restarted PacsPull with the same state file fetches nothing twice; the state file holds no
 * UID in clear; a PACS that is down is a counted, logged failure, not a throw.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import dicomParser from 'dicom-parser';
import { PacsPull } from '../../../edge-client/dicom/pacsPull.js';
import { startOrthancOrSkip, type OrthancServer } from '../../helpers/orthancServer.js';
import { makeTempDir, sharedDataFile } from '../../helpers/paths.js';

const FIRST = ['CT_small.dcm', 'RG3_J2KR.dcm', 'MR_small_jp2klossless.dcm', 'JPEG-LL.dcm'];
const LATER = 'CR_small_16x16.dcm';

function uidOf(p10: Uint8Array): { sop: string; ts: string; pixels: Buffer } {
  const ds = dicomParser.parseDicom(p10);
  const px = ds.elements.x7fe00010;
  return { sop: ds.string('x00080018')!, ts: ds.string('x00020010')!, pixels: Buffer.from(ds.byteArray.subarray(px.dataOffset, px.dataOffset + px.length)) };
}

describe('PacsPull with Orthanc DICOMweb (real process, loopback-only namespace)', function () {
  this.timeout(120_000);
  const samples = sharedDataFile('dicom_samples');
  const t = makeTempDir();
  const stateFile = join(t.dir, 'state', 'pacs-pull.json');
  let orthanc: OrthancServer | null = null;
  const got: { sop: string; ts: string; pixels: Buffer; url: string }[] = [];
  const warnings: string[] = [];
  const log = { info: () => {}, warn: (_o: object, m: string) => void warnings.push(m) };
  const rememberAs = (uid: string) => createHmac('sha256', 'test key').update(uid).digest('hex');
  const make = (): PacsPull =>
    new PacsPull({
      baseUrl: orthanc!.dicomWebUrl,
      intervalMs: 60_000,
      stateFile,
      rememberAs,
      log,
      onInstance: async (p10, source) => void got.push({ ...uidOf(p10), url: source.url }),
    });
  const source = (f: string): ReturnType<typeof uidOf> => uidOf(readFileSync(join(samples!, f)));

  before(async function () {
    if (!samples) {
      console.log('      (skipped: ../shared/data/dicom_samples is absent; it is for development and CI only)');
      return this.skip();
    }
    orthanc = await startOrthancOrSkip();
    if (!orthanc) return this.skip();
    for (const f of FIRST) await orthanc.upload(readFileSync(join(samples, f)));
  });

  after(async () => {
    await orthanc?.stop();
    t.cleanup();
  });

  it('ingests each instance exactly once, in its stored transfer syntax; a second pull fetches nothing', async () => {
    const pull = make();
    const r1 = await pull.pullOnce();
    assert.deepEqual(r1, { found: 4, fetched: 4, skipped: 0, failed: 0 });
    assert.equal(got.length, 4);
    for (const f of FIRST) {
      const s = source(f);
      const g = got.find((x) => x.sop === s.sop);
      assert.ok(g, `${f} not pulled`);
      assert.equal(g.ts, s.ts, `${f} came back in another transfer syntax`);
      assert.ok(g.pixels.equals(s.pixels), `${f}: pixel data differs`);
      assert.equal(g.url, orthanc!.dicomWebUrl);
    }
    const r2 = await pull.pullOnce();
    assert.deepEqual(r2, { found: 4, fetched: 0, skipped: 4, failed: 0 });
    assert.equal(got.length, 4);
  });

  it('fetches only a newly uploaded instance; the state file keeps hashes, not UIDs', async () => {
    await orthanc!.upload(readFileSync(join(samples!, LATER)));
    const r = await make().pullOnce(); // a fresh PacsPull: the state file carries over
    assert.deepEqual(r, { found: 5, fetched: 1, skipped: 4, failed: 0 });
    assert.equal(got.at(-1)!.sop, source(LATER).sop);
    const state = readFileSync(stateFile, 'utf8');
    for (const f of [...FIRST, LATER]) {
      const sop = source(f).sop;
      assert.ok(!state.includes(sop), 'a SOP Instance UID is stored in clear');
      assert.ok(state.includes(rememberAs(sop)));
    }
    assert.ok(!/CompressedSamples|Doe/.test(state));
  });

  it('after a restart with the same state file nothing is fetched twice', async () => {
    const before = got.length;
    const r = await make().pullOnce();
    assert.deepEqual(r, { found: 5, fetched: 0, skipped: 5, failed: 0 });
    assert.equal(got.length, before);
  });

  it('a failing onInstance is retried next time and recorded only after success', async () => {
    await orthanc!.upload(readFileSync(join(samples!, 'ct_series_5n', '2062.dcm')));
    let fail = true;
    const pull = new PacsPull({
      baseUrl: orthanc!.dicomWebUrl,
      intervalMs: 60_000,
      stateFile,
      rememberAs,
      log,
      onInstance: async () => {
        if (fail) throw new Error('disk full');
      },
    });
    assert.deepEqual(await pull.pullOnce(), { found: 6, fetched: 0, skipped: 5, failed: 1 });
    fail = false;
    assert.deepEqual(await pull.pullOnce(), { found: 6, fetched: 1, skipped: 5, failed: 0 });
  });

  it('a PACS that is down is a logged failure, not a throw; start()/stop() keep retrying quietly', async () => {
    await orthanc!.kill();
    const before = warnings.length;
    const pull = make();
    const r = await pull.pullOnce();
    assert.equal(r.failed, 1);
    assert.equal(r.fetched, 0);
    assert.ok(r.error);
    assert.ok(warnings.length > before && /cannot list instances/.test(warnings.at(-1)!));
    pull.start();
    await new Promise((res) => setTimeout(res, 200));
    await pull.stop();
  });
});
