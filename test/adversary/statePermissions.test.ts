/**
 * State on disk is owner-only (issue 17, item 6): after a real round with real processes (a
 * coordinator and two edges as CLI child processes on loopback, the round's version deployed to
 * both edges), every file in the coordinator's data dir and in an edge's state dir is 0600 (no
 * group or other bits) and every directory 0700 — the store document, keys, tokens, lock,
 * blobs, the edge's identity, trust, policy, inference tokens, versions and model cache.
 */
import assert from 'node:assert/strict';
import { lstatSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

/** Every file and directory under `root` (itself included) with group or other permission bits. */
function loose(root: string): { path: string; mode: string; kind: string }[] {
  const out: { path: string; mode: string; kind: string }[] = [];
  const walk = (p: string): void => {
    const st = lstatSync(p);
    const kind = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : 'other';
    if ((st.mode & 0o077) !== 0 || kind === 'other') out.push({ path: relative(root, p) || '.', mode: (st.mode & 0o777).toString(8), kind });
    if (st.isDirectory()) for (const e of readdirSync(p)) walk(join(p, e));
  };
  walk(root);
  return out;
}

/** How many files and dirs are under `root` (so the test cannot pass on an empty dir). */
function count(root: string): { files: string[]; dirs: number } {
  const files: string[] = [];
  let dirs = 0;
  const walk = (p: string): void => {
    const st = lstatSync(p);
    if (st.isDirectory()) {
      dirs++;
      for (const e of readdirSync(p)) walk(join(p, e));
    } else files.push(relative(root, p));
  };
  walk(root);
  return { files, dirs };
}

describe('adversary: state files 0600 and dirs 0700 after a real round (coordinator and 2 edges as processes)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  let coord: CoordinatorProc;
  const edges: Proc[] = [];

  before(async () => {
    coord = await startCoordinator(dataDir, await freePort());
    for (const [i, site] of ['site-a', 'site-b'].entries()) {
      const data = join(t.dir, `${site}.npz`);
      const r = await runCli(['make-synthetic', '--out', data, '--n', '120', '--seed', String(i + 1)]);
      assert.equal(r.code, 0, r.stderr);
      const stateDir = join(t.dir, site);
      await enrol(coord, site, stateDir);
      // The hospital's own files: a site policy and an inference access token.
      assert.equal((await runCli(['edge', 'policy', 'init', '--state-dir', stateDir])).code, 0);
      assert.equal((await runCli(['edge', 'token', 'create', '--state-dir', stateDir, '--role', 'clinician'])).code, 0);
      edges.push(spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', data, '--serve-port', String(await freePort()), '--serve-no-auth']));
    }
    await waitFor('2 edges online', async () => (await onlineSites(coord)).length === 2);
  });
  after(async () => {
    for (const p of edges) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('every file is 0600 and every dir 0700 in the coordinator data dir and an edge state dir', async () => {
    const experiment = await createExperiment(coord, { name: 'perms', deploy: 'auto', fit: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam', steps: 2 } });
    const start = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    await waitFor('the round to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 90_000, 200);
    const rounds = (await call<{ status: string; versionId: string }[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    assert.equal(rounds[0]?.status, 'completed', JSON.stringify(rounds));
    // The round's version reaches site-a's versions store (OTA download and install).
    const version = rounds[0].versionId;
    await waitFor('site-a to run the new version', () => edges[0].output().includes('"event":"ota_active"') && edges[0].output().includes(version), 60_000, 100);

    const edgeDir = join(t.dir, 'site-a');
    const c = count(dataDir);
    const e = count(edgeDir);
    for (const f of ['fedmed.db', 'fedmed.db-wal', 'admin.token', 'coordinator-key.pem', 'coordinator.lock', `blobs/${version}.fmp`]) assert.ok(c.files.includes(f), `${f} in the data dir: ${c.files.join(', ')}`);
    for (const f of ['policy.json', `versions/${version}.fmp`, 'versions/active.json']) assert.ok(e.files.includes(f), `${f} in the state dir: ${e.files.join(', ')}`);
    assert.ok(e.files.some((f) => f.startsWith('models/')), `the model cache in the state dir: ${e.files.join(', ')}`);
    assert.deepEqual(loose(dataDir), [], `coordinator data dir (${c.files.length} files, ${c.dirs} dirs)`);
    assert.deepEqual(loose(edgeDir), [], `edge state dir (${e.files.length} files, ${e.dirs} dirs)`);
  });
});
