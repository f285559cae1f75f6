import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { versionAccuracy, runRoundsKillingEdge, call, createExperiment, enrol, freePort, onlineSites, paramsFileAccuracy, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

interface RoundRec {
  round: number;
  status: string;
  reason: string | null;
  versionId: string | null;
  security?: { mode: string; contributors: number; keySet: string };
  evalMetrics: { accuracy: number } | null;
  sites: { site: string; phase: string; status: string; reason?: string }[];
}

/** Every file under `dir` (recursively). */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map((f) => join(dir, String(f))).filter((f) => statSync(f).isFile());
}

describe('secure aggregation end to end: CKKS with 5 edges as processes on loopback', function () {
  this.timeout(300_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  const secretKeyFile = join(t.dir, 'admin', 'ckks-secret.json');
  let coord: CoordinatorProc;
  const edges = new Map<string, Proc>();
  const names = ['site-a', 'site-b', 'site-c', 'site-d', 'site-e'];
  const npz = names.map((site) => join(t.dir, `${site}.npz`));

  before(async () => {
    coord = await startCoordinator(dataDir, await freePort());
    for (const [i, site] of names.entries()) {
      const r = await runCli(['make-synthetic', '--out', npz[i], '--n', '200', '--seed', String(10 + i), '--shift', String((i - 2) * 0.05), '--noise', '0.3']);
      assert.equal(r.code, 0, r.stderr);
      await enrol(coord, site, join(t.dir, site));
      edges.set(site, spawnCli(['edge', 'start', '--state-dir', join(t.dir, site), '--data', npz[i], '--release-ckks-metrics']));
    }
    await waitFor('5 edges online', async () => (await onlineSites(coord)).length === 5);
  });

  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(coord?.output().slice(-6000), edges.get('site-a')?.output().slice(-4000));
    for (const p of edges.values()) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('refuses a CKKS experiment before the admin made a key set, and a strategy the coordinator would have to run on the model', async () => {
    const none = await call<{ message: string }>(coord, 'POST', '/v1/experiments', { name: 'x', model: { zoo: 'cnn-28', numClasses: 2 }, security: 'ckks' });
    assert.equal(none.status, 400);
    assert.match(none.body.message, /fedmed federation keys create/);
  });

  it('the admin tool makes a key set and wraps it to each site\'s certified encryption key (the coordinator stores only wrapped copies)', async () => {
    const r = await runCli(['federation', 'keys', 'create', '--coordinator', coord.url, '--token', coord.adminToken, '--admin-key', `${dataDir}.admin-key.pem`, '--secret-key-out', secretKeyFile, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { keySet: string; sites: { site: string; granted: boolean }[] };
    assert.deepEqual(out.sites.map((s) => [s.site, s.granted]), names.map((n) => [n, true]));
    assert.equal(statSync(secretKeyFile).mode & 0o777, 0o600);
    const secret = Buffer.from((JSON.parse(readFileSync(secretKeyFile, 'utf8')) as { secretKey: string }).secretKey, 'base64');
    const stored = filesUnder(join(dataDir, 'ckks-keys'));
    assert.equal(stored.length, 5);
    for (const f of stored) assert.equal(readFileSync(f).indexOf(secret.subarray(0, 64)), -1, `${f} holds the secret key in the clear`);
    const strat = await call<{ message: string }>(coord, 'POST', '/v1/experiments', { name: 'x', model: { zoo: 'cnn-28', numClasses: 2 }, security: 'ckks', strategy: 'fedadam' });
    assert.equal(strat.status, 400);
    assert.match(strat.body.message, /fedadam needs the coordinator to compute on the model/);
  });

  it('runs 3 CKKS rounds with an edge killed mid-round; the sites\' model improves; the coordinator never held it in the clear', async () => {
    const experiment = await createExperiment(coord, { name: 'ckks-e2e', security: 'ckks', ckks: { range: 0.5 }, minFitClients: 3, fit: { epochs: 1, batchSize: 32, learningRate: 0.0005, optimizer: 'adam' } });
    // Kill site-e while it trains in round 2.
    const rounds = await runRoundsKillingEdge<RoundRec>(coord, experiment, 3, edges.get('site-e')!, 2);
    assert.deepEqual(rounds.map((r) => [r.round, r.status]), [[1, 'completed'], [2, 'completed'], [3, 'completed']], JSON.stringify(rounds.map((r) => r.reason)));
    assert.deepEqual(rounds.map((r) => r.security?.mode), ['ckks', 'ckks', 'ckks']);
    assert.deepEqual(rounds.map((r) => r.security?.contributors), [5, 4, 4]);
    assert.equal(rounds[1].sites.find((s) => s.site === 'site-e' && s.phase === 'fit')!.status, 'dropped');
    // Every site evaluated the version it decrypted itself.
    assert.ok(rounds.every((r) => r.evalMetrics !== null));

    const versions = (await call<{ id: string; round: number; paramsSha256: string | null; encrypted?: { bytes: number } }[]>(coord, 'GET', `/v1/experiments/${experiment}/versions`)).body;
    assert.deepEqual(versions.map((v) => [v.round, v.paramsSha256 === null, v.encrypted !== undefined]), [[0, false, false], [1, true, true], [2, true, true], [3, true, true]]);
    const download = await call<{ message: string }>(coord, 'GET', `/v1/versions/${versions[3].id}/params`);
    assert.equal(download.status, 409);
    assert.match(download.body.message, /CKKS/);
    // Only the key holder can read the model: the admin decrypts the last version.
    const out = join(t.dir, 'final.fmp');
    const r = await runCli(['federation', 'keys', 'decrypt', '--coordinator', coord.url, '--token', coord.adminToken, '--secret-key', secretKeyFile, '--experiment', experiment, '--version-id', versions[3].id, '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const finalBytes = readFileSync(out);
    const initial = await versionAccuracy(coord, versions[0].id, npz);
    const final = await paramsFileAccuracy(finalBytes, npz);
    assert.ok(final > initial + 0.2, `accuracy ${initial} -> ${final}`);
    // The sites that took part in round 3 hold the same model the admin decrypted.
    const siteCopy = readFileSync(join(t.dir, 'site-a', 'ckks', 'models', `${experiment}.fmp`));
    assert.ok(siteCopy.subarray(-1024).equals(finalBytes.subarray(-1024)));
    // Nowhere in the coordinator's data directory are the new model's parameters in the clear:
    // one plaintext blob (the initial model), and no file holds a window of the final parameters.
    assert.equal(filesUnder(join(dataDir, 'blobs')).length, 1);
    const windows = [0.25, 0.5, 0.75].map((f) => finalBytes.subarray(Math.floor(finalBytes.length * f), Math.floor(finalBytes.length * f) + 32));
    for (const f of filesUnder(dataDir)) {
      const bytes = readFileSync(f);
      for (const w of windows) assert.equal(bytes.indexOf(w), -1, `${f} contains final model parameters`);
    }
    assert.equal(filesUnder(join(dataDir, 'ckks-versions')).length, 3);
    for (const site of names.slice(0, 4)) assert.doesNotMatch(edges.get(site)!.output(), /fit_failed|evaluate_failed/);
  });

  it('a site that restarts with an empty model cache catches up by decrypting the chain from the initial model', async () => {
    await waitFor('4 edges online', async () => (await onlineSites(coord)).length === 4);
    // site-e was killed during round 2: bring it back; it must decrypt versions 1..3 to join round 4.
    edges.set('site-e', spawnCli(['edge', 'start', '--state-dir', join(t.dir, 'site-e'), '--data', npz[4], '--release-ckks-metrics']));
    await waitFor('5 edges online', async () => (await onlineSites(coord)).length === 5);
    const [exp] = (await call<{ id: string; name: string }[]>(coord, 'GET', '/v1/experiments')).body.filter((e) => e.name === 'ckks-e2e');
    await call(coord, 'POST', `/v1/experiments/${exp.id}/rounds`, { rounds: 1 });
    await waitFor('round 4 to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${exp.id}`)).body.running, 200_000, 200);
    const rounds = (await call<RoundRec[]>(coord, 'GET', `/v1/experiments/${exp.id}/rounds`)).body;
    assert.equal(rounds[3].status, 'completed', rounds[3].reason ?? '');
    assert.equal(rounds[3].security?.contributors, 5);
  });
});
