import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { versionAccuracy, runRoundsKillingEdge, call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

interface RoundRec {
  round: number;
  status: string;
  reason: string | null;
  versionId: string | null;
  security?: { mode: string; threshold: number; contributors: number };
  sites: { site: string; phase: string; status: string; reason?: string }[];
}

describe('secure aggregation end to end: SecAgg+ with 5 edges as processes on loopback', function () {
  this.timeout(300_000);
  const t = makeTempDir();
  const dataDir = join(t.dir, 'coordinator');
  let coord: CoordinatorProc;
  const edges = new Map<string, Proc>();
  const names = ['site-a', 'site-b', 'site-c', 'site-d', 'site-e'];

  before(async () => {
    coord = await startCoordinator(dataDir, await freePort());
    for (const [i, site] of names.entries()) {
      const r = await runCli(['make-synthetic', '--out', join(t.dir, `${site}.npz`), '--n', '200', '--seed', String(10 + i), '--shift', String((i - 2) * 0.05), '--noise', '0.3']);
      assert.equal(r.code, 0, r.stderr);
      await enrol(coord, site, join(t.dir, site));
      edges.set(site, spawnCli(['edge', 'start', '--state-dir', join(t.dir, site), '--data', join(t.dir, `${site}.npz`)]));
    }
    await waitFor('5 edges online', async () => (await onlineSites(coord)).length === 5);
  });

  after(async () => {
    for (const p of edges.values()) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('runs 3 SecAgg+ rounds with an edge killed mid-round; the model improves; the coordinator only ever stored aggregates', async () => {
    const experiment = await createExperiment(coord, { name: 'secagg-e2e', security: 'secagg', secagg: { bits: 16, range: 0.5 }, minFitClients: 3, fit: { epochs: 1, batchSize: 32, learningRate: 0.0005, optimizer: 'adam' } });
    // Kill site-e while it trains in round 2 (after it advertised its keys and shared them).
    const rounds = await runRoundsKillingEdge<RoundRec>(coord, experiment, 3, edges.get('site-e')!, 2);
    assert.deepEqual(rounds.map((r) => [r.round, r.status]), [[1, 'completed'], [2, 'completed'], [3, 'completed']], JSON.stringify(rounds.map((r) => r.reason)));
    assert.deepEqual(rounds.map((r) => r.security?.mode), ['secagg', 'secagg', 'secagg']);
    assert.deepEqual(rounds.map((r) => r.security?.contributors), [5, 4, 4]);
    // The active-coordinator bound: ⌊2·5/3⌋ + 1 of the 5 holders of each site's shares.
    assert.equal(rounds[0].security!.threshold, 4);
    const e2 = rounds[1].sites.find((s) => s.site === 'site-e' && s.phase === 'fit')!;
    assert.equal(e2.status, 'dropped');
    // The global model improves on every site's test split.
    const versions = (await call<{ id: string; round: number }[]>(coord, 'GET', `/v1/experiments/${experiment}/versions`)).body;
    assert.deepEqual(versions.map((v) => v.round), [0, 1, 2, 3]);
    const accuracy = (versionId: string) => versionAccuracy(coord, versionId, names.map((site) => join(t.dir, `${site}.npz`)));
    const initial = await accuracy(versions[0].id);
    const final = await accuracy(versions[3].id);
    assert.ok(final > initial + 0.2, `accuracy ${initial} -> ${final}`);
    // Nothing but the published global models was written: one params blob per version.
    const blobs = readdirSync(join(dataDir, 'blobs'), { recursive: true }).filter((f) => String(f).endsWith('.fmp'));
    assert.equal(blobs.length, 4, blobs.join(', '));
    // The edges' logs show the protocol ran (keys before training finished) and no site refused.
    for (const site of names.slice(0, 4)) assert.doesNotMatch(edges.get(site)!.output(), /secagg_refused/);
  });

  it('distributed DP under SecAgg+: sites add integer (discrete Gaussian) noise before masking; the round is charged', async () => {
    await waitFor('4 edges online', async () => (await onlineSites(coord)).length === 4);
    const experiment = await createExperiment(coord, {
      name: 'secagg-dp',
      security: 'secagg',
      secagg: { bits: 20, range: 0.5 },
      minFitClients: 3,
      privacy: { mode: 'distributed', clip: 1, noiseMultiplier: 1, delta: 1e-5 },
      fit: { epochs: 1, batchSize: 32, learningRate: 0.0005, optimizer: 'adam' },
    });
    const start = await call<{ firstRound: number }>(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    await waitFor('the round to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 200_000, 200);
    const [r] = (await call<(RoundRec & { privacy?: { charged: boolean; epsilon?: number } })[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    assert.equal(r.status, 'completed', r.reason ?? '');
    assert.equal(r.security?.contributors, 4);
    assert.equal(r.privacy?.charged, true);
    assert.ok((r.privacy?.epsilon ?? 0) > 0);
  });
});
