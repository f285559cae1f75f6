import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { freePort, startCoordinator, stopProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

describe('cli: fedmed site add|list|revoke offline on the data dir', function () {
  this.timeout(60_000);
  const t = makeTempDir();
  after(() => t.cleanup());

  it('manages sites while the coordinator is stopped, and refuses while it runs', async () => {
    const dataDir = join(t.dir, 'coord');
    const adminKey = join(t.dir, 'admin', 'admin-key.pem');
    const port = await freePort();
    // No join token before the admin certified the coordinator (a token names the admin key).
    let r = await runCli(['site', 'add', 'offline-site', '--data-dir', dataDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /certify this coordinator first/);
    r = await runCli(['federation', 'init', '--admin-key-out', adminKey, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const { fingerprint } = JSON.parse(r.stdout) as { fingerprint: string };
    assert.equal(statSync(adminKey).mode & 0o777, 0o600);
    r = await runCli(['federation', 'init', '--admin-key-out', adminKey]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /never overwritten/);
    r = await runCli(['federation', 'certify-coordinator', '--data-dir', dataDir, '--admin-key', adminKey, '--url', `http://127.0.0.1:${port}`, '--json']);
    assert.equal(r.code, 0, r.stderr);
    r = await runCli(['site', 'add', 'offline-site', '--data-dir', dataDir, '--admin-key', adminKey, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match((JSON.parse(r.stdout) as { token: string }).token, new RegExp(`^fmj_[A-Za-z0-9_-]{43}\\.${fingerprint}$`));
    r = await runCli(['site', 'add', 'offline-site', '--data-dir', dataDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists/);
    r = await runCli(['site', 'add', 'bad name!', '--data-dir', dataDir]);
    assert.match(r.stderr, /must be 1-64 letters/);
    const coord = await startCoordinator(dataDir, port, [], { certify: false });
    try {
      r = await runCli(['site', 'list', '--data-dir', dataDir]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /coordinator \(pid \d+\) is running/);
      r = await runCli(['site', 'list', '--json', '--coordinator', coord.url, '--token', coord.adminToken]);
      assert.deepEqual((JSON.parse(r.stdout) as { name: string; enrolled: boolean }[]).map((s) => [s.name, s.enrolled]), [['offline-site', false]]);
    } finally {
      await stopProc(coord);
    }
    r = await runCli(['site', 'revoke', 'offline-site', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    r = await runCli(['site', 'list', '--data-dir', dataDir, '--json']);
    assert.equal((JSON.parse(r.stdout) as { revoked: boolean }[])[0].revoked, true);
  });
});
