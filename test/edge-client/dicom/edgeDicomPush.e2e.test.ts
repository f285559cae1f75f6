/**
 * C-STORE into a running `fedmed edge start --dicom-port …` (a real child process, enrolled with a
 * test coordinator): dcmtk's storescu pushes every file of ../shared/data/dicom_samples, each
 * proposing its own transfer syntax. Proves, from outside the process:
 *   - one case per distinct SOP Instance UID (the six MR_small* files share one: one case, kept
 *     as the first one arrived), with the right metadata (transfer syntax, modality, geometry,
 *     bits, photometric);
 *   - each case's decoded pixels equal dcmtk's: its pixelHash (HMAC-SHA256 with the site key read
 *     from STATE_DIR/cases/pseudonym.key) equals the one computed here over the Pixel Data that
 *     dcmdjpeg / dcmdrle / dcmdjpls / dcmconv +te write (JPEG 2000, which dcmtk 3.6.7 cannot
 *     decode: over pixels pinned by the committed checksums), and it is shown by GET /v1/cases/:id
 *     and `fedmed edge cases list`;
 *   - no patient name, ID or UID of any sample reaches the edge's logs, audit log, /metrics or
 *     API answers.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import dicomParser from 'dicom-parser';
import { decodeDicom, initDicomCodecs } from '../../../edge-client/dicom/dicomDecoder.js';
import { inflater, PROPOSE, requireDcmtk } from '../../helpers/dcmtkTools.js';
import { dcmtkDecompress, dcmtkFrame, J2K_SHA256, littleEndianBytes, readManifest, sha256Int32, type ManifestEntry } from '../../helpers/dcmtkReference.js';
import { enrolDicomSite, leaksOf, startDicomEdge, type DicomEdge } from '../../helpers/dicomEdge.js';
import { freePort, startCoordinator, stopProc, type CoordinatorProc } from '../../helpers/federation.js';
import { makeTempDir, sharedDataFile } from '../../helpers/paths.js';
import { runCli } from '../../helpers/runCli.js';

const AET = 'FEDMED';
const MODALITY = 'MODALITY1';

interface Sample {
  file: string;
  manifest: ManifestEntry;
  uids: string[];
  sopInstanceUid: string;
  patient: string[];
}

function storescu(port: number, flag: string, file: string): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('storescu', ['-R', flag, '-aet', MODALITY, '-aec', AET, '127.0.0.1', String(port), file], { env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

/** A case's pixelHash from the pixel bytes (as the edge defines it: pseudonymiser.ts, dicomDecoder.ts pixelBytes). */
function pixelHash(key: Buffer, bytes: Uint8Array): string {
  return createHmac('sha256', key).update(`pixels\0${createHash('sha256').update(bytes).digest('hex')}`).digest('hex');
}

describe('edge C-STORE of every sample file: one case per SOP instance, pixels equal to dcmtk\'s (real `fedmed edge start`)', function () {
  this.timeout(120_000);
  const samplesDir = sharedDataFile('dicom_samples');
  const t = makeTempDir();
  let coord: CoordinatorProc | undefined;
  let edge: DicomEdge | undefined;
  let dicomPort = 0;
  let samples: Sample[] = [];

  before(async function () {
    if (!samplesDir) {
      console.log('      (skipped: ../shared/data/dicom_samples is absent; it is for development and CI only)');
      return this.skip();
    }
    if (!requireDcmtk(['storescu', 'dcmconv', 'dcmdjpeg', 'dcmdrle', 'dcmdjpls'])) return this.skip();
    const manifest = readManifest(samplesDir);
    samples = manifest.map((m) => {
      const file = join(samplesDir, m.file);
      const ds = dicomParser.parseDicom(readFileSync(file), { inflater });
      const s = (tag: string): string => (ds.string(tag) ?? '').trim();
      return { file, manifest: m, sopInstanceUid: s('x00080018'), uids: [s('x00080018'), s('x0020000d'), s('x0020000e')], patient: [s('x00100010'), s('x00100020')] };
    });
    const onDisk = (readdirSync(samplesDir, { recursive: true }) as string[]).filter((f) => f.endsWith('.dcm'));
    assert.equal(samples.length, onDisk.length, 'the manifest lists every sample file');
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    const site = await enrolDicomSite(coord, 'site-push', join(t.dir, 'site-push'));
    dicomPort = await freePort();
    edge = await startDicomEdge(site, ['--dicom-port', String(dicomPort), '--dicom-aet', AET, '--dicom-allowed-aets', MODALITY], { readyEvent: 'dicom_listening' });
  });

  after(async () => {
    if (edge) await edge.stop();
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('storescu pushes every file in its own transfer syntax; each distinct SOP Instance UID is one case', async () => {
    const started = Date.now();
    for (const s of samples) {
      const flag = PROPOSE[s.manifest.transfer_syntax_uid];
      assert.ok(flag, `no storescu flag for ${s.manifest.transfer_syntax_uid}`);
      const r = await storescu(dicomPort, flag, s.file);
      assert.equal(r.code, 0, `storescu ${flag} ${s.manifest.file}: ${r.out}\n${edge!.proc.output().slice(-3000)}`);
    }
    console.log(`      ${samples.length} files, one storescu each: ${Date.now() - started} ms`);
    const distinct = new Set(samples.map((s) => s.sopInstanceUid));
    assert.ok(distinct.size < samples.length, 'some samples share a SOP Instance UID (the MR_small family)');
    assert.equal(samples.filter((s) => s.manifest.file.startsWith('MR_small')).length, 6);
    assert.equal(new Set(samples.filter((s) => s.manifest.file.startsWith('MR_small')).map((s) => s.sopInstanceUid)).size, 1, 'the six MR_small files share one SOP Instance UID');
    const { cases, stats } = await edge!.cases();
    assert.equal(stats.cases, distinct.size, 'one case per distinct SOP Instance UID');
    assert.equal(cases.length, distinct.size);
    const received = edge!.events('case_received');
    assert.equal(received.length, samples.length, 'every C-STORE was ingested');
    assert.equal(received.filter((e) => e.duplicate === false).length, distinct.size);
    assert.equal(received.filter((e) => e.duplicate === true).length, samples.length - distinct.size);
  });

  it("each case's metadata is its first file's, and its pixelHash is the HMAC of dcmtk's pixels (JPEG 2000: of the committed checksums' pixels)", async () => {
    await initDicomCodecs();
    const key = edge!.pseudonymKey();
    assert.equal(key.length, 32);
    const cli = await runCli(['edge', 'cases', 'list', '--state-dir', join(t.dir, 'site-push'), '--limit', '1000', '--json']);
    assert.equal(cli.code, 0, cli.stderr);
    const listed = new Map((JSON.parse(cli.stdout) as { id: string; pixelHash: string | null }[]).map((c) => [c.id, c.pixelHash]));
    const text = await runCli(['edge', 'cases', 'list', '--state-dir', join(t.dir, 'site-push'), '--limit', '1000']);
    assert.equal(text.code, 0, text.stderr);
    const checked: string[] = [];
    for (const uid of new Set(samples.map((s) => s.sopInstanceUid))) {
      const files = samples.filter((s) => s.sopInstanceUid === uid);
      const first = files[0].manifest; // pushed first (in manifest order): the case keeps it
      const found = await edge!.api('POST', '/v1/cases/lookup', { sopInstanceUid: uid });
      assert.equal(found.status, 200, found.text);
      const id = found.body.id as string;
      const c = (await edge!.api('GET', `/v1/cases/${id}`)).body as { metadata: Record<string, unknown>; pixelHash: string; source: string };
      assert.equal(c.source, 'scp');
      assert.deepEqual(
        { transferSyntax: c.metadata.transferSyntax, modality: c.metadata.modality, rows: c.metadata.rows, columns: c.metadata.columns, bitsAllocated: c.metadata.bitsAllocated, bitsStored: c.metadata.bitsStored, pixelRepresentation: c.metadata.pixelRepresentation, photometric: c.metadata.photometric, samplesPerPixel: c.metadata.samplesPerPixel, frames: c.metadata.frames },
        { transferSyntax: first.transfer_syntax_uid, modality: first.modality, rows: first.rows, columns: first.columns, bitsAllocated: first.bits_allocated, bitsStored: first.bits_stored, pixelRepresentation: first.pixel_representation, photometric: first.photometric, samplesPerPixel: 1, frames: 1 },
        `${first.file}: case metadata`,
      );
      assert.match(c.pixelHash, /^[0-9a-f]{64}$/, `${first.file}: no pixelHash`);
      // Every file of this instance (the MR family: six syntaxes) decodes, by dcmtk, to the case's pixels.
      for (const s of files) {
        const base = s.manifest.file.split('/').pop()!;
        let expected: string;
        const out = dcmtkDecompress(s.manifest.transfer_syntax_uid, s.file, t.dir);
        if (out) {
          const f = dcmtkFrame(out);
          // The pixel bytes a case's hash covers are dcmtk's uncompressed Pixel Data of frame 1, byte for byte.
          assert.ok(Buffer.from(littleEndianBytes(f.values, f.bitsAllocated)).equals(Buffer.from(f.raw)), `${base}: dcmtk's Pixel Data bytes are not its stored values`);
          expected = pixelHash(key, f.raw);
        } else {
          assert.ok(J2K_SHA256[base], `${base}: no dcmtk decoder and no committed checksum`);
          const d = decodeDicom(new Uint8Array(readFileSync(s.file)));
          assert.equal(sha256Int32(d.pixels), J2K_SHA256[base], `${base}: pixels differ from the committed JPEG 2000 checksum`);
          expected = pixelHash(key, littleEndianBytes(d.pixels, d.metadata.bitsAllocated));
        }
        assert.equal(c.pixelHash, expected, `${s.manifest.file} (${s.manifest.transfer_syntax_uid}): the edge's decoded pixels differ from ${out ? "dcmtk's" : 'the committed checksum'}`);
        checked.push(relative(samplesDir!, s.file));
      }
      assert.equal(listed.get(id), c.pixelHash, '`fedmed edge cases list --json` shows the pixelHash');
      assert.ok(text.stdout.includes(`${id}`) && text.stdout.includes(`pixels ${c.pixelHash.slice(0, 16)}`), '`fedmed edge cases list` shows the pixelHash');
    }
    assert.equal(checked.length, samples.length);
    // Keyed: not the plain digest of the pixels.
    const mr = samples.find((s) => s.manifest.file === 'MR_small.dcm')!;
    const plain = createHash('sha256').update(dcmtkFrame(dcmtkDecompress(mr.manifest.transfer_syntax_uid, mr.file, t.dir)!).raw).digest('hex');
    const { cases } = await edge!.cases();
    assert.ok(cases.every((c) => c.pixelHash !== plain && !c.pixelHash!.includes(plain.slice(0, 16))));
  });

  it('no patient name, ID or UID of the samples in the edge log, audit log, /metrics, API answers or CLI output', async () => {
    const secrets = [...new Set(samples.flatMap((s) => [...s.patient, ...s.uids]))].filter((v) => /[A-Za-z0-9]{2}/.test(v));
    assert.ok(secrets.some((x) => /\^/.test(x)) && secrets.length > 20, JSON.stringify(secrets));
    const metrics = await edge!.api('GET', '/metrics');
    assert.equal(metrics.status, 200, metrics.text);
    const audit = await runCli(['audit', 'show', '--state-dir', join(t.dir, 'site-push'), '--json']);
    assert.equal(audit.code, 0, audit.stderr);
    assert.match(audit.stdout, /case\.received/);
    const list = await runCli(['edge', 'cases', 'list', '--state-dir', join(t.dir, 'site-push'), '--limit', '1000']);
    const stats = await runCli(['edge', 'cases', 'stats', '--state-dir', join(t.dir, 'site-push'), '--json']);
    const sources = [
      { what: 'edge stdout/stderr', text: edge!.proc.output() },
      { what: 'audit log', text: audit.stdout },
      { what: '/metrics', text: metrics.text },
      { what: 'API answers', text: edge!.answers.join('\n') },
      { what: 'fedmed edge cases list/stats', text: list.stdout + list.stderr + stats.stdout + stats.stderr },
    ];
    assert.deepEqual(leaksOf(secrets, sources).slice(0, 10), []);
    // and the check can fail: the sample files do hold them
    assert.deepEqual(leaksOf(samples[0].patient, [{ what: 'sample', text: readFileSync(samples[0].file).toString('latin1') }]).length, 2);
  });
});
