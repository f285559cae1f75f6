import assert from 'node:assert/strict';
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
    let r = await runCli(['site', 'add', 'offline-site', '--data-dir', dataDir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match((JSON.parse(r.stdout) as { token: string }).token, /^fmj_/);
    r = await runCli(['site', 'add', 'offline-site', '--data-dir', dataDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /already exists/);
    r = await runCli(['site', 'add', 'bad name!', '--data-dir', dataDir]);
    assert.match(r.stderr, /must be 1-64 letters/);
    const coord = await startCoordinator(dataDir, await freePort());
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
