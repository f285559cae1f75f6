import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { PNG } from 'pngjs';
import { createServiceToken, listServiceTokens, revokeServiceToken, ServiceTokens, serviceTokensPath } from '../../../edge-client/inference/serviceTokens.js';
import { exampleFromPng, InferenceRequestError, parsePngHeader } from '../../../edge-client/inference/inferenceRequest.js';
import { HotSwapModel } from '../../../edge-client/inference/hotSwapModel.js';
import { isLoopbackHost, startInferenceService } from '../../../edge-client/inference/inferenceService.js';
import { makeTempDir } from '../../helpers/paths.js';

describe('inference service access tokens (STATE_DIR/inference-tokens.json)', () => {
  const t = makeTempDir();
  after(() => t.cleanup());

  it('stores only SHA-256 of the secret, mode 0600; checks role, alteration, revocation and expiry; a running checker sees file changes', () => {
    const tokens = ServiceTokens.forStateDir(t.dir); // made before any token exists
    assert.equal(tokens.check('Bearer fmi_0123456789abcdef.' + 'A'.repeat(43)).ok, false);
    const c = createServiceToken(t.dir, { role: 'clinician', name: 'viewer' });
    const m = createServiceToken(t.dir, { role: 'monitor', expiresDays: 1 });
    const file = serviceTokensPath(t.dir);
    if (process.platform !== 'win32') assert.equal(statSync(file).mode & 0o777, 0o600);
    const secret = c.token.split('.')[1];
    assert.equal(readFileSync(file, 'utf8').includes(secret), false);
    assert.equal(c.record.sha256, createHash('sha256').update(secret).digest('hex'));
    assert.deepEqual(tokens.check(`Bearer ${c.token}`), { ok: true, role: 'clinician', id: c.record.id, name: c.record.name });
    assert.equal((tokens.check(`bearer ${m.token}`) as { role: string }).role, 'monitor');
    assert.equal(tokens.check(undefined).ok, false);
    assert.equal(tokens.check(c.token).ok, false, 'without "Bearer"');
    const altered = c.token.slice(0, -2) + (c.token.endsWith('AA') ? 'BB' : 'AA');
    assert.deepEqual(tokens.check(`Bearer ${altered}`), { ok: false, reason: 'invalid access token' });
    // Expiry: a day later the monitor token is refused.
    assert.match((tokens.check(`Bearer ${m.token}`, Date.now() + 86_400_001) as { reason: string }).reason, /expired/);
    assert.throws(() => createServiceToken(t.dir, { role: 'clinician', name: 'viewer' }), /exists/);
    revokeServiceToken(t.dir, 'viewer');
    assert.match((tokens.check(`Bearer ${c.token}`) as { reason: string }).reason, /revoked/);
    assert.equal(tokens.live(), 1);
    revokeServiceToken(t.dir, m.record.id.slice(0, 6));
    assert.equal(tokens.check(`Bearer ${m.token}`).ok, false);
    assert.equal(listServiceTokens(t.dir).length, 2);
    assert.throws(() => revokeServiceToken(t.dir, 'nobody'), /no live token/);
    assert.throws(() => createServiceToken(t.dir, { role: 'admin' as 'monitor' }), /--role/);
  });
});

describe('PNG requests: the IHDR is checked before anything is inflated', () => {
  const png = (o: { interlace?: number; colorType?: number; depth?: number; width?: number } = {}): Buffer => {
    const p = new PNG({ width: o.width ?? 28, height: 28 });
    const b = PNG.sync.write(p);
    if (o.interlace !== undefined) b[28] = o.interlace;
    if (o.colorType !== undefined) b[25] = o.colorType;
    if (o.depth !== undefined) b[24] = o.depth;
    return b;
  };

  it('reads width, height, bit depth, colour type and interlace method; refuses interlaced and malformed headers with a typed 4xx', () => {
    assert.deepEqual(parsePngHeader(png()), { width: 28, height: 28, bitDepth: 8, colorType: 6, interlace: 0, rawBytes: 28 * (1 + 28 * 4) });
    const refused = (b: Buffer, re: RegExp): void => {
      assert.throws(
        () => exampleFromPng(b, [28, 28, 1]),
        (e: unknown) => e instanceof InferenceRequestError && e.status >= 400 && e.status < 500 && re.test(e.message),
      );
    };
    refused(png({ interlace: 1 }), /interlaced/);
    refused(png({ interlace: 2 }), /interlace method/);
    refused(png({ colorType: 5 }), /colour type 5/);
    refused(png({ colorType: 2, depth: 4 }), /bit depth 4/);
    refused(png({ width: 4000 }), /4000x28/);
    const noIhdr = png();
    noIhdr.write('IDAT', 12, 'latin1');
    refused(noIhdr, /IHDR/);
    assert.equal(exampleFromPng(png(), [28, 28, 1]).length, 784);
  });
});

describe('inference service security options', () => {
  const model = new HotSwapModel({ providers: ['cpu'] });
  after(() => model.close());

  it('needs tokens unless auth is "none", which is refused off loopback; plain HTTP off loopback needs insecure', async () => {
    assert.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('::1') && isLoopbackHost('localhost') && !isLoopbackHost('0.0.0.0') && !isLoopbackHost('10.0.0.5'));
    await assert.rejects(startInferenceService({ model, port: 0 }), /needs access tokens/);
    await assert.rejects(startInferenceService({ model, port: 0, host: '0.0.0.0', auth: 'none', insecure: true }), /only on loopback/);
    const t = makeTempDir();
    try {
      await assert.rejects(startInferenceService({ model, port: 0, host: '0.0.0.0', tokens: ServiceTokens.forStateDir(t.dir) }), /plain HTTP on 0\.0\.0\.0.*--serve-insecure/);
    } finally {
      t.cleanup();
    }
  });
});
