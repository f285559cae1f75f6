/**
 * The C-STORE SCP against dcmtk's storescu/echoscu (real processes, 127.0.0.1, port 0): every
 * sample file arrives in its own transfer syntax with identical pixel data bytes and SOP
 * Instance UID; the refusals (calling AE, called AE, transfer syntax, busy, cannot understand);
 * hostile connections (garbage, oversized PDU, stalled) do not disturb a concurrent good sender;
 * close() leaves no socket behind.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, relative } from 'node:path';
import dicomParser from 'dicom-parser';
import { startStoreScp, type StoreScpHandle } from '../../../edge-client/dicom/storeScp.js';
import { DicomBusyError, DicomError } from '../../../shared/errors.js';
import { inflater, PROPOSE } from '../../helpers/dcmtkTools.js';
import { makeTempDir, sharedDataFile } from '../../helpers/paths.js';

const AET = 'FEDMED';
const MODALITY = 'MODALITY1';

interface Sample {
  file: string;
  transferSyntax: string;
  sopInstanceUid: string;
  pixelData: Buffer;
}

/** SOP Instance UID, transfer syntax and the pixel data element's bytes (fragments included). */
function describe10(bytes: Uint8Array): Omit<Sample, 'file'> {
  const ds = dicomParser.parseDicom(bytes, { inflater });
  const px = ds.elements.x7fe00010;
  assert.ok(px, 'no pixel data');
  return {
    transferSyntax: ds.string('x00020010')!,
    sopInstanceUid: ds.string('x00080018')!,
    pixelData: Buffer.from(ds.byteArray.subarray(px.dataOffset, px.dataOffset + px.length)),
  };
}

function run(cmd: string, args: string[]): Promise<{ code: number | null; out: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('close', (code) => resolve({ code, out, ms: Date.now() - started }));
  });
}

function connectRaw(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

function closed(s: Socket, ms: number): Promise<boolean> {
  if (s.destroyed || s.readableEnded) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(t);
      resolve(true);
    });
    s.on('error', () => {});
    s.resume();
  });
}

/** Established or listening TCP sockets on a local port (ss; TIME-WAIT does not count). */
function socketsOn(port: number): string[] {
  const r = spawnSync('ss', ['-Htan', `( sport = :${port} )`], { encoding: 'utf8' });
  return r.stdout.split('\n').filter((l) => l.trim() && !/TIME-WAIT/.test(l));
}

describe('C-STORE SCP with dcmtk storescu (real processes)', function () {
  this.timeout(120_000);
  const samplesDir = sharedDataFile('dicom_samples');
  let samples: Sample[] = [];
  let scp: StoreScpHandle;
  const received: { p10: Uint8Array; callingAet: string }[] = [];
  const logs: { level: string; msg: string; obj: object }[] = [];
  let behaviour: (p10: Uint8Array) => Promise<void> = async () => {};
  const t = makeTempDir();

  before(async function () {
    if (spawnSync('storescu', ['--version']).status !== 0) {
      if (process.env.CI) throw new Error('dcmtk (storescu, echoscu) is required in CI: apt-get install dcmtk');
      console.log('      (skipped: dcmtk storescu not installed: apt-get install dcmtk)');
      return this.skip();
    }
    if (!samplesDir) {
      console.log('      (skipped: ../shared/data/dicom_samples is absent; it is for development and CI only)');
      return this.skip();
    }
    samples = readdirSync(samplesDir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.dcm'))
      .map((e) => join(e.parentPath, e.name))
      .sort()
      .map((file) => ({ file, ...describe10(readFileSync(file)) }));
    scp = await startStoreScp({
      host: '127.0.0.1',
      port: 0,
      aet: AET,
      allowedAets: [MODALITY, 'SECOND'],
      onInstance: async (p10, source) => {
        await behaviour(p10);
        received.push({ p10, callingAet: source.callingAet });
      },
      log: { info: (obj, msg) => logs.push({ level: 'info', msg, obj }), warn: (obj, msg) => logs.push({ level: 'warn', msg, obj }) },
    });
  });

  after(async () => {
    await scp?.close();
    t.cleanup();
  });

  beforeEach(() => {
    behaviour = async () => {};
  });

  it('receives every sample file in its own transfer syntax: same SOP Instance UID and pixel data bytes', async () => {
    assert.equal(samples.length, 17, 'the sample set has 17 files');
    const groups = new Map<string, string[]>();
    for (const s of samples) {
      const flag = PROPOSE[s.transferSyntax];
      assert.ok(flag, `no storescu flag for ${s.transferSyntax}`);
      groups.set(flag, [...(groups.get(flag) ?? []), s.file]);
    }
    const before = received.length;
    const started = Date.now();
    for (const [flag, files] of groups) {
      const r = await run('storescu', ['-R', flag, '-aet', MODALITY, '-aec', AET, '127.0.0.1', String(scp.port), ...files]);
      assert.equal(r.code, 0, `storescu ${flag}: ${r.out}`);
    }
    const ms = Date.now() - started;
    console.log(`      17 files in ${groups.size} associations (storescu processes): ${ms} ms, ${(ms / 17).toFixed(1)} ms per file incl. process start`);
    const got = received.slice(before);
    assert.equal(got.length, samples.length);
    const remaining = got.map((g) => ({ ...g, d: describe10(g.p10) }));
    for (const s of samples) {
      const i = remaining.findIndex((r) => r.d.sopInstanceUid === s.sopInstanceUid && r.d.transferSyntax === s.transferSyntax);
      assert.ok(i >= 0, `${relative(samplesDir!, s.file)} did not arrive in ${s.transferSyntax}`);
      const [r] = remaining.splice(i, 1);
      assert.ok(r.d.pixelData.equals(s.pixelData), `${relative(samplesDir!, s.file)}: pixel data bytes differ`);
      assert.equal(r.callingAet, MODALITY);
    }
    // No PHI in the logs: no UID of any sample, no patient name.
    const text = JSON.stringify(logs);
    for (const s of samples) assert.ok(!text.includes(s.sopInstanceUid), 'a SOP Instance UID was logged');
    assert.ok(!/CompressedSamples|Doe\^Peter/.test(text), 'a patient name was logged');
  });

  it('measures the C-STORE rate in one association (100 × CT_small)', async () => {
    const ct = samples.find((s) => s.file.endsWith('CT_small.dcm'))!;
    const before = received.length;
    const r = await run('storescu', ['-xe', '--repeat', '100', '-aet', MODALITY, '-aec', AET, '127.0.0.1', String(scp.port), ct.file]);
    assert.equal(r.code, 0, r.out);
    assert.equal(received.length - before, 100);
    console.log(`      100 C-STOREs of 39 kB in one association: ${r.ms} ms (${((100 * 1000) / r.ms).toFixed(0)}/s incl. process start)`);
  });

  it('answers C-ECHO', async () => {
    const r = await run('echoscu', ['-aet', MODALITY, '-aec', AET, '127.0.0.1', String(scp.port)]);
    assert.equal(r.code, 0, r.out);
  });

  it('refuses a calling AE title that is not allowed (nothing delivered)', async () => {
    const before = received.length;
    const r = await run('storescu', ['-aet', 'INTRUDER', '-aec', AET, '127.0.0.1', String(scp.port), samples[0].file]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /Calling AE Title Not Recognized/i);
    assert.equal(received.length, before);
    assert.ok(logs.some((l) => l.level === 'warn' && /calling AE title/.test(l.msg)));
  });

  it('refuses a wrong called AE title', async () => {
    const before = received.length;
    const r = await run('storescu', ['-aet', MODALITY, '-aec', 'NOTUS', '127.0.0.1', String(scp.port), samples[0].file]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /Called AE Title Not Recognized/i);
    assert.equal(received.length, before);
  });

  it('rejects a presentation context in an unsupported transfer syntax (JPEG 2000 Part 2, .92)', async () => {
    const jpll = readFileSync(samples.find((s) => s.file.endsWith('JPEG-LL.dcm'))!.file);
    const at = jpll.indexOf('1.2.840.10008.1.2.4.70');
    const file = join(t.dir, 'part2.dcm');
    writeFileSync(file, Buffer.concat([jpll.subarray(0, at), Buffer.from('1.2.840.10008.1.2.4.92'), jpll.subarray(at + 22)]));
    const cfg = join(t.dir, 'storescu.cfg');
    writeFileSync(cfg, '[[TransferSyntaxes]]\n[Part2]\nTransferSyntax1 = 1.2.840.10008.1.2.4.92\n[[PresentationContexts]]\n[Only]\nPresentationContext1 = SecondaryCaptureImageStorage\\Part2\n[[Profiles]]\n[Default]\nPresentationContexts = Only\n');
    const before = received.length;
    const r = await run('storescu', ['-xf', cfg, 'Default', '-aet', MODALITY, '-aec', AET, '127.0.0.1', String(scp.port), file]);
    assert.notEqual(r.code, 0);
    assert.match(r.out, /No Acceptable Presentation Contexts/i);
    assert.equal(received.length, before);
    assert.ok(logs.some((l) => l.level === 'warn' && /transfer syntax not supported/.test(l.msg) && JSON.stringify(l.obj).includes('1.2.840.10008.1.2.4.92')));
  });

  it('answers A700 (out of resources) when the intake is busy, C000 when the instance cannot be understood', async () => {
    const file = samples[0].file;
    behaviour = async () => {
      throw new DicomBusyError('decoder queue full');
    };
    let r = await run('storescu', ['-v', '-aet', MODALITY, '-aec', AET, '127.0.0.1', String(scp.port), file]);
    assert.match(r.out, /OutOfResources|Out of Resources/i, r.out);
    behaviour = async () => {
      throw new DicomError('no pixel data');
    };
    r = await run('storescu', ['-v', '-aet', MODALITY, '-aec', AET, '127.0.0.1', String(scp.port), file]);
    assert.match(r.out, /CannotUnderstand|Cannot Understand/i, r.out);
    assert.ok(logs.some((l) => /out of resources/.test(l.msg)) && logs.some((l) => /cannot understand/.test(l.msg)));
  });

  it('garbage, an oversized PDU and a stalled client do not disturb a concurrent sender; each is cut off', async () => {
    const garbage = await connectRaw(scp.port);
    garbage.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const huge = await connectRaw(scp.port);
    huge.write(Buffer.from([0x01, 0x00, 0x7f, 0xff, 0xff, 0xff, 0x00, 0x01]));
    const stalled = await connectRaw(scp.port);
    const before = received.length;
    const good = await run('storescu', ['-aet', 'SECOND', '-aec', AET, '127.0.0.1', String(scp.port), samples[0].file]);
    assert.equal(good.code, 0, good.out);
    assert.equal(received.length, before + 1);
    assert.ok(await closed(garbage, 3000), 'the garbage connection stays open');
    assert.ok(await closed(huge, 3000), 'the oversized-PDU connection stays open');
    assert.ok(!stalled.destroyed, 'the stalled client is still connected (until its association timeout)');
    stalled.on('error', () => {}); // (close() below destroys it)
  });

  it('close() stops listening and destroys open connections: no socket left', async () => {
    const stalled = await connectRaw(scp.port);
    const port = scp.port;
    await scp.close();
    assert.ok(await closed(stalled, 3000), 'an open connection survived close()');
    await assert.rejects(connectRaw(port), /ECONNREFUSED/);
    assert.deepEqual(socketsOn(port), []);
  });
});
