import assert from 'node:assert/strict';
import { join } from 'node:path';
import { freePort, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { loopbackCertificate } from '../helpers/testCertificate.js';

describe('federation over TLS: https API and wss edge connection', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  let coord: CoordinatorProc | null = null;
  let edge: Proc | null = null;
  after(async () => {
    if (edge) await stopProc(edge);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('enrols a site and connects its edge over wss with a certificate the edge trusts', async function () {
    const tls = loopbackCertificate(t.dir, 'coordinator');
    if (!tls) return this.skip(); // no openssl on this developer machine
    const { cert, key } = tls;
    coord = await startCoordinator(join(t.dir, 'coord'), await freePort(), ['--tls-cert', cert, '--tls-key', key], { certify: false });
    assert.match(coord.url, /^https:/);
    const env = { NODE_EXTRA_CA_CERTS: cert };
    // The admin's whole workflow with the CLI, over https.
    const adminKey = join(t.dir, 'admin.pem');
    const target = ['--coordinator', coord.url, '--token', coord.adminToken];
    assert.equal((await runCli(['federation', 'init', '--admin-key-out', adminKey])).code, 0);
    const certify = await runCli(['federation', 'certify-coordinator', ...target, '--admin-key', adminKey], { env });
    assert.equal(certify.code, 0, certify.stderr);
    const add = await runCli(['site', 'add', 'tls-site', ...target, '--admin-key', adminKey, '--json'], { env });
    assert.equal(add.code, 0, add.stderr);
    const { token } = JSON.parse(add.stdout) as { token: string };
    const enrol = await runCli(['edge', 'enroll', '--coordinator', coord.url, '--token', token, '--state-dir', join(t.dir, 'edge')], { env });
    assert.equal(enrol.code, 0, enrol.stderr);
    const fingerprint = /fingerprint: (SHA256:\S+)/.exec(enrol.stdout)![1];
    const wrong = await runCli(['site', 'certify', 'tls-site', ...target, '--admin-key', adminKey, '--fingerprint', 'SHA256:' + 'A'.repeat(43)], { env });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /NOT certified/);
    const site = await runCli(['site', 'certify', 'tls-site', ...target, '--admin-key', adminKey, '--fingerprint', fingerprint], { env });
    assert.equal(site.code, 0, site.stderr);
    const npz = join(t.dir, 'd.npz');
    assert.equal((await runCli(['make-synthetic', '--out', npz, '--n', '50'])).code, 0);
    edge = spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'edge'), '--data', npz], env);
    await waitFor('the edge to connect over wss', () => edge!.output().includes('"event":"connected"'));
    const status = await runCli(['status', '--json', '--coordinator', coord.url, '--token', coord.adminToken], { env });
    assert.equal(status.code, 0, status.stderr);
    assert.equal((JSON.parse(status.stdout) as { sites: { name: string; online: boolean }[] }).sites[0].online, true);
    // Without trusting the certificate, the CLI refuses to talk to the coordinator.
    const untrusted = await runCli(['status', '--coordinator', coord.url, '--token', coord.adminToken]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /cannot reach the coordinator/);
  });
});
