/**
 * The edge inference service against clients on the hospital network (real `fedmed edge start`
 * process, https with its own certificate, tokens made with `fedmed edge token`): no token or a
 * bad, revoked or expired one gets 401; a monitor's token may read /healthz and /metrics but gets
 * 403 on /v1/infer; a clinician's gets answers. Plain HTTP on a network address is refused at
 * start without --serve-insecure. An interlaced PNG whose IDAT inflates to hundreds of MiB is
 * refused from its header (4xx) and the service answers normally right after.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import { PNG } from 'pngjs';
import { initParams } from '../../shared/model/initParams.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { freePort, spawnCli, stopProc, waitFor, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { httpsCall, type HttpsAnswer } from '../helpers/httpsClient.js';
import { loopbackCertificate } from '../helpers/testCertificate.js';
import { dataFile, SPEC, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';
import { ScriptedOta } from './scriptedOta.js';

type Answer = HttpsAnswer;

/** A 28x28 8-bit grayscale PNG declared interlaced whose one IDAT inflates to `inflated` bytes. */
function interlacedPngBomb(inflated: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(28, 0);
  ihdr.writeUInt32BE(28, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // grayscale
  ihdr[12] = 1; // Adam7
  const idat = deflateSync(Buffer.alloc(inflated), { level: 9 });
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', Buffer.alloc(0))]);
}

describe('adversary: the edge inference service needs a token of the right role, over https; PNG bombs are refused from the header', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let port = 0;
  let ca = '';
  let stateDir = '';
  const procs: Proc[] = [];
  const input = Array.from({ length: 784 }, (_, i) => (i % 255) / 255);

  const call = (path: string, o: { token?: string; method?: string; body?: Buffer | string; type?: string } = {}): Promise<Answer> => httpsCall({ port, ca }, path, o);
  const infer = (token?: string): Promise<Answer> => call('/v1/infer', { token, method: 'POST', type: 'application/json', body: JSON.stringify({ input }) });
  const token = async (role: string, ...extra: string[]): Promise<string> => {
    const r = await runCli(['edge', 'token', 'create', '--state-dir', stateDir, '--role', role, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    const tok = r.stdout.trim();
    assert.match(tok, /^fmi_[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    return tok;
  };

  before(async function () {
    await fake.start();
    port = await freePort();
    const pem = loopbackCertificate(t.dir, 'edge');
    if (!pem) return this.skip();
    ca = readFileSync(pem.cert, 'utf8');
    edge = await startEdge(fake, t.dir, 'hosp', { args: ['--serve-port', String(port), '--serve-tls-cert', pem.cert, '--serve-tls-key', pem.key] });
    stateDir = join(t.dir, 'hosp');
    await waitEvent(edge, 'connected');
    const listening = await waitEvent(edge, 'inference_listening');
    assert.match(String(listening.url), /^https:\/\/127\.0\.0\.1:/);
    const ota = new ScriptedOta(fake);
    const v = ota.manifest(initParams(SPEC, 7));
    await ota.offer(v);
    assert.equal((await ota.status(v.manifest.id)).status, 'active');
  });
  after(async () => {
    for (const p of procs) await stopProc(p);
    if (edge) await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  it('no token, a malformed one or an unknown one: 401 on every route', async () => {
    for (const path of ['/v1/infer', '/healthz', '/metrics']) {
      const r = await call(path, path === '/v1/infer' ? { method: 'POST', type: 'application/json', body: JSON.stringify({ input }) } : {});
      assert.equal(r.status, 401, path);
      assert.equal(r.body.error, 'UNAUTHORIZED');
    }
    assert.equal((await infer('not-a-token')).status, 401);
    assert.equal((await infer(`fmi_${'0'.repeat(16)}.${'A'.repeat(43)}`)).status, 401);
  });

  it('a monitor token reads /healthz and /metrics and gets 403 on /v1/infer; a clinician token gets answers', async () => {
    const monitor = await token('monitor', '--name', 'grafana');
    const health = await call('/healthz', { token: monitor });
    assert.equal(health.status, 200);
    assert.equal(health.body.ok, true);
    const metrics = await call('/metrics', { token: monitor });
    assert.equal(metrics.status, 200);
    assert.match(String(metrics.body.text), /fedmed_model_swaps_total/);
    const denied = await infer(monitor);
    assert.equal(denied.status, 403);
    assert.match(String(denied.body.message), /clinician/);
    const clinician = await token('clinician', '--name', 'pacs-viewer');
    const ok = await infer(clinician);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal((ok.body.probabilities as number[]).length, 2);
    assert.equal((await call('/healthz', { token: clinician })).status, 200);
    // A token with its last character changed is not the token.
    const altered = clinician.slice(0, -1) + (clinician.endsWith('A') ? 'B' : 'A');
    assert.equal((await infer(altered)).status, 401);
  });

  it('the token file holds only hashes, mode 0600; a revoked token gets 401 on the next request', async () => {
    const clinician = await token('clinician', '--name', 'to-revoke');
    assert.equal((await infer(clinician)).status, 200);
    const file = join(stateDir, 'inference-tokens.json');
    const text = readFileSync(file, 'utf8');
    assert.equal(text.includes(clinician.split('.')[1]), false, 'the secret is not stored');
    if (process.platform !== 'win32') assert.equal((await import('node:fs')).statSync(file).mode & 0o777, 0o600);
    const list = await runCli(['edge', 'token', 'list', '--state-dir', stateDir, '--json']);
    assert.equal(list.stdout.includes(clinician.split('.')[1]), false);
    const r = await runCli(['edge', 'token', 'revoke', '--state-dir', stateDir, 'to-revoke']);
    assert.equal(r.code, 0, r.stderr);
    const after = await infer(clinician);
    assert.equal(after.status, 401);
    assert.match(String(after.body.message), /revoked/);
  });

  it('an expired token gets 401', async () => {
    const shortLived = await token('clinician', '--name', 'short', '--expires-days', String(1.5 / 86_400)); // 1.5 s
    await waitFor('the token to expire', async () => (await infer(shortLived)).status === 401, 10_000, 200);
    assert.match(String((await infer(shortLived)).body.message), /expired/);
  });

  it('an interlaced PNG bomb (small file, IDAT inflating to 256 MiB) gets a 4xx from its header; the service answers normally right after', async () => {
    const clinician = await token('clinician', '--name', 'png');
    const bomb = interlacedPngBomb(256 * 1024 * 1024);
    assert.ok(bomb.length < 1024 * 1024, `bomb is ${bomb.length} bytes`);
    const r = await call('/v1/infer', { token: clinician, method: 'POST', type: 'image/png', body: bomb });
    assert.equal(r.status, 422);
    assert.match(String(r.body.message), /interlaced/);
    const ok = await infer(clinician);
    assert.equal(ok.status, 200);
    // A normal PNG of the model's size is still decoded.
    const png = new PNG({ width: 28, height: 28 });
    png.data.fill(128);
    const fromPng = await call('/v1/infer', { token: clinician, method: 'POST', type: 'image/png', body: PNG.sync.write(png) });
    assert.equal(fromPng.status, 200, JSON.stringify(fromPng.body));
  });

  it('plain HTTP on 0.0.0.0 without --serve-insecure refuses to start with a clear message; so does --serve-no-auth off loopback', async () => {
    const data = await dataFile(t.dir);
    const plain = spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'hosp'), '--data', data, '--serve-port', String(await freePort()), '--serve-host', '0.0.0.0']);
    procs.push(plain);
    assert.notEqual(await plain.exited, 0);
    assert.match(plain.output(), /refusing to serve inference over plain HTTP on 0\.0\.0\.0.*--serve-tls-cert.*--serve-insecure/);
    const noAuth = spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'hosp'), '--data', data, '--serve-port', String(await freePort()), '--serve-host', '0.0.0.0', '--serve-insecure', '--serve-no-auth']);
    procs.push(noAuth);
    assert.notEqual(await noAuth.exited, 0);
    assert.match(noAuth.output(), /--serve-no-auth is allowed only on loopback/);
  });

  it('with --serve-insecure, plain HTTP on 0.0.0.0 starts, warns in the JSON log, and still needs a token', async () => {
    await stopProc(edge);
    const p = await freePort();
    const insecure = spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', await dataFile(t.dir), '--serve-port', String(p), '--serve-host', '0.0.0.0', '--serve-insecure']);
    procs.push(insecure);
    await waitFor('the insecure warning', () => /"event":"inference_insecure","warning":"plain HTTP on 0\.0\.0\.0/.test(insecure.output()), 30_000);
    assert.equal((await fetch(`http://127.0.0.1:${p}/healthz`)).status, 401);
  });
});
