/**
 * Roles and the lifecycle of API tokens against a real coordinator process: a researcher cannot
 * publish, promote or roll back a clinical deployment (a deployer can); tokens are listed without
 * their secrets, expire and are revoked at once; the last admin token cannot be revoked; the data
 * dir the coordinator creates is the owner's alone.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { call, freePort, startCoordinator, stopProc, type CoordinatorProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

describe('coordinator roles and API token lifecycle (real coordinator process)', function () {
  this.timeout(60_000);
  const t = makeTempDir();
  let coord: CoordinatorProc;
  const dataDir = join(t.dir, 'coordinator');
  before(async () => {
    coord = await startCoordinator(dataDir, await freePort());
  });
  after(async () => {
    await stopProc(coord);
    t.cleanup();
  });
  const token = async (role: string, extra: Record<string, unknown> = {}) => (await call<{ id: string; token: string }>(coord, 'POST', '/v1/tokens', { role, ...extra })).body;

  it('a researcher token cannot publish, promote or roll back a deployment; a deployer token can reach them', async () => {
    const researcher = await token('researcher');
    const deployer = await token('deployer', { name: 'clinical lead' });
    const version = { version: 'a'.repeat(64) };
    for (const [path, body] of [['/v1/deployment/publish', version], ['/v1/deployment/promote', undefined], ['/v1/deployment/rollback', {}]] as const) {
      const r = await call<{ message: string }>(coord, 'POST', path, body, researcher.token);
      assert.equal(r.status, 403, path);
      assert.match(r.body.message, /needs the admin or deployer role; your token is researcher/);
      // The deployer gets past the role check (the version does not exist: a 4xx of another kind).
      const d = await call<{ message: string }>(coord, 'POST', path, body, deployer.token);
      assert.notEqual(d.status, 403, `${path}: ${JSON.stringify(d.body)}`);
      assert.notEqual(d.status, 401);
    }
    // Everyone reads; the deployer cannot run experiments.
    assert.equal((await call(coord, 'GET', '/v1/deployment', undefined, researcher.token)).status, 200);
    assert.equal((await call(coord, 'GET', '/v1/deployment', undefined, deployer.token)).status, 200);
    assert.equal((await call(coord, 'POST', '/v1/experiments', { name: 'x', model: { zoo: 'cnn-28' } }, deployer.token)).status, 403);
  });

  it('tokens are listed without secrets, revoked at once, expire; the last admin token stays', async () => {
    const r = await token('researcher', { name: 'to revoke' });
    assert.equal((await call(coord, 'GET', '/v1/experiments', undefined, r.token)).status, 200);
    const list = await runCli(['token', 'list', '--json', '--coordinator', coord.url, '--token', coord.adminToken]);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(!list.stdout.includes('fma_') && !list.stdout.includes('sha256'), 'no secret or hash in the list');
    const rows = JSON.parse(list.stdout) as { id: string; role: string; name?: string; active: boolean }[];
    assert.ok(rows.some((x) => x.id === r.id && x.name === 'to revoke' && x.active));
    const revoke = await runCli(['token', 'revoke', r.id, '--coordinator', coord.url, '--token', coord.adminToken]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.equal((await call(coord, 'GET', '/v1/experiments', undefined, r.token)).status, 401, 'revoked at once');
    // Expiry: a token made to expire in ~1 s.
    const short = await token('researcher', { expiresDays: 1 / 86_400 });
    assert.equal((await call(coord, 'GET', '/v1/experiments', undefined, short.token)).status, 200);
    await new Promise((res) => setTimeout(res, 1500));
    assert.equal((await call(coord, 'GET', '/v1/experiments', undefined, short.token)).status, 401, 'expired');
    // The only admin token cannot be revoked (nobody could manage the coordinator any more).
    const admins = (await call<{ id: string; role: string; active: boolean }[]>(coord, 'GET', '/v1/tokens')).body.filter((x) => x.role === 'admin' && x.active);
    assert.equal(admins.length, 1);
    const last = await call<{ message: string }>(coord, 'DELETE', `/v1/tokens/${admins[0].id}`);
    assert.equal(last.status, 400);
    assert.match(last.body.message, /last active admin token/);
    assert.equal((await call(coord, 'GET', '/v1/tokens', undefined, r.token)).status, 401);
  });

  it('creates its data dir for the owner only', () => {
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'blobs')).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'admin.token')).mode & 0o777, 0o600);
  });
});
