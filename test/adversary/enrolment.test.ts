/**
 * Enrolment without trust on first use, against scripted coordinators: `fedmed edge enroll`
 * (a real CLI process) pins the admin key named by the join token's fingerprint, checks the
 * coordinator's certificate against it before the token's secret is sent, and checks the
 * coordinator's signed receipt before saving anything.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity } from '../../shared/secure/identity.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueCoordinatorCertificate } from '../../shared/secure/trust/adminSigning.js';
import { signEnrolmentReceipt } from '../../shared/secure/trust/enrolmentReceipt.js';
import { siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';
import { formatJoinToken } from '../../shared/secure/trust/joinToken.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

const SECRET = `fmj_${'s'.repeat(43)}`;

describe('adversary: enrolment against impostors (fedmed edge enroll as a process)', function () {
  this.timeout(60_000);
  const t = makeTempDir();
  const fakes: FakeCoordinator[] = [];
  after(async () => {
    for (const f of fakes) await f.close();
    t.cleanup();
  });
  async function fake(o: ConstructorParameters<typeof FakeCoordinator>[0] = {}): Promise<FakeCoordinator> {
    const f = new FakeCoordinator(o);
    fakes.push(f);
    await f.start();
    f.joinTokens.set(SECRET, 'hosp-a');
    return f;
  }
  const enroll = (f: FakeCoordinator, token: string, dir: string) => runCli(['edge', 'enroll', '--coordinator', f.url, '--token', token, '--state-dir', join(t.dir, dir), '--json']);
  const enrolAttempts = (f: FakeCoordinator) => f.received.filter((m) => (m as { type: string }).type === 'enroll').length;

  it('the honest path: the token pins the admin key, the printed fingerprint is that of the keys the coordinator received', async () => {
    const f = await fake();
    const r = await enroll(f, formatJoinToken(SECRET, f.admin.fingerprint), 'honest');
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { site: string; siteFingerprint: string; adminFingerprint: string };
    assert.equal(out.site, 'hosp-a');
    assert.equal(out.adminFingerprint, f.admin.fingerprint);
    assert.equal(out.siteFingerprint, siteKeysFingerprint(f.enrolled[0].publicKey, f.enrolled[0].encryptionKey));
  });

  it('an impostor with another admin key never sees the token secret', async () => {
    const real = ephemeralAdminKey();
    const impostor = await fake();
    const r = await enroll(impostor, formatJoinToken(SECRET, real.fingerprint), 'impostor');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is not the one this join token names .*an impostor.*Nothing was sent/);
    assert.equal(enrolAttempts(impostor), 0);
    assert.equal(existsSync(join(t.dir, 'impostor', 'site.json')), false);
  });

  it('the right admin key but a coordinator certificate it did not sign, or for another URL: refused before sending the token', async () => {
    const f = await fake();
    f.certificate = issueCoordinatorCertificate(ephemeralAdminKey(), { publicKey: f.identity.publicKeyB64, urls: [f.url] });
    let r = await enroll(f, formatJoinToken(SECRET, f.admin.fingerprint), 'forged-cert');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /certificate is refused: .*another federation/);
    f.certificate = issueCoordinatorCertificate(f.admin, { publicKey: f.identity.publicKeyB64, urls: ['https://fl.example.org'] });
    r = await enroll(f, formatJoinToken(SECRET, f.admin.fingerprint), 'other-url');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /certificate is for https:\/\/fl\.example\.org/);
    assert.equal(enrolAttempts(f), 0);
  });

  it('a relay that answers the enrolment itself (its receipt is not signed by the certified key): nothing is saved', async () => {
    const f = await fake();
    // The impostor serves the real coordinator's public documents but answers the POST itself.
    const stranger = generateIdentity();
    const realHttp = f.http.bind(f);
    f.http = (req, res) => {
      if (req.url !== '/v1/enroll') return realHttp(req, res);
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const b = JSON.parse(body) as { publicKey: string; encryptionKey: string };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ site: 'hosp-a', receipt: signEnrolmentReceipt(stranger.privateKey, { site: 'hosp-a', identityKey: b.publicKey, encryptionKey: b.encryptionKey }) }));
      });
    };
    const r = await enroll(f, formatJoinToken(SECRET, f.admin.fingerprint), 'relayed');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not signed by the certified coordinator key .*nothing was saved/);
    assert.equal(existsSync(join(t.dir, 'relayed', 'site.json')), false);
  });

  it('a token without the admin fingerprint, and plain http to a remote host, are refused', async () => {
    const f = await fake();
    let r = await enroll(f, SECRET, 'no-fingerprint');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /carries no federation admin fingerprint/);
    r = await runCli(['edge', 'enroll', '--coordinator', 'http://192.0.2.10:8700', '--token', formatJoinToken(SECRET, f.admin.fingerprint), '--state-dir', join(t.dir, 'remote')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refusing plain http to 192\.0\.2\.10:8700/);
    assert.equal(enrolAttempts(f), 0);
  });
});
