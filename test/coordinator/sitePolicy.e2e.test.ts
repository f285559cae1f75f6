/**
 * Site policies end to end: a coordinator and 5 edge processes on loopback, SecAgg+ with
 * distributed DP. Each hospital holds its own rules: site-a requires SecAgg+ (its policy file,
 * written with `fedmed edge policy init`), site-c trains only for experiments its operator
 * approved, site-d and site-e have small budgets that run out at different rounds. The refusals
 * are visible per round and per site, with their kind, and a round every site refuses says who
 * refused and why.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { computeEpsilon } from '../../shared/privacy/rdpAccountant.js';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

interface RoundRec {
  round: number;
  status: string;
  reason: string | null;
  sites: { site: string; phase: string; status: string; reason?: string; refused?: string }[];
}

describe('site policies end to end: 5 edges, SecAgg+ with distributed DP, each site its own rules', function () {
  this.timeout(600_000);
  const t = makeTempDir();
  let coord: CoordinatorProc;
  const edges = new Map<string, Proc>();
  const Z = 2;
  // A round costs about ε(z = 2) (the distributed discrete Gaussian at this quantisation adds < 0.1%).
  const eps = (rounds: number) => computeEpsilon({ noiseMultiplier: Z, samplingRate: 1, steps: rounds, delta: 1e-5 }).epsilon;

  const runRounds = async (experiment: string, n: number): Promise<RoundRec[]> => {
    const start = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: n });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    await waitFor('the rounds to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 400_000, 300);
    return (await call<RoundRec[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
  };
  const fitOf = (r: RoundRec, site: string) => r.sites.find((s) => s.site === site && s.phase === 'fit');

  before(async () => {
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    const policyArgs: Record<string, string[]> = {
      'site-b': ['--privacy-budget', '100'],
      'site-c': ['--privacy-budget', '100', '--require-approval'],
      'site-d': ['--privacy-budget', String((eps(1) + eps(2)) / 2)], // one round
      'site-e': ['--privacy-budget', String((eps(2) + eps(3)) / 2)], // two rounds
    };
    for (const site of ['site-a', 'site-b', 'site-c', 'site-d', 'site-e']) {
      assert.equal((await runCli(['make-synthetic', '--out', join(t.dir, `${site}.npz`), '--n', '120', '--seed', String(site.charCodeAt(5))])).code, 0);
      const stateDir = join(t.dir, site);
      await enrol(coord, site, stateDir);
      if (site === 'site-a') {
        // This hospital keeps its rules in a policy file.
        const init = await runCli(['edge', 'policy', 'init', '--state-dir', stateDir, '--privacy-budget', '100', '--require-security', 'secagg']);
        assert.equal(init.code, 0, init.stderr);
        assert.equal((await runCli(['edge', 'policy', 'check', '--state-dir', stateDir])).code, 0);
      }
      edges.set(site, spawnCli(['edge', 'start', '--state-dir', stateDir, '--data', join(t.dir, `${site}.npz`), ...(policyArgs[site] ?? [])]));
    }
    await waitFor('5 edges online', async () => (await onlineSites(coord)).length === 5, 120_000);
  });
  after(async () => {
    for (const p of edges.values()) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('budgets run out at different rounds, approval gates one site, all visibly; the rounds go on with the rest', async () => {
    const experiment = await createExperiment(coord, {
      name: 'policy-e2e',
      security: 'secagg',
      secagg: { bits: 20, range: 0.5 },
      minFitClients: 3,
      privacy: { mode: 'distributed', clip: 1, noiseMultiplier: Z, delta: 1e-5 },
      fit: { epochs: 1, batchSize: 32, learningRate: 0.0005, optimizer: 'adam' },
    });
    // Round 1: site-c waits for its operator.
    const [r1] = await runRounds(experiment, 1);
    assert.equal(r1.status, 'completed', r1.reason ?? '');
    assert.equal(fitOf(r1, 'site-c')?.refused, 'approval_pending');
    assert.match(fitOf(r1, 'site-c')!.reason!, /awaits this site's approval/);
    const site = (await call<{ pendingApproval: string[]; refusals: { experiment: string; kind: string }[] }>(coord, 'GET', '/v1/sites/site-c')).body;
    assert.deepEqual(site.pendingApproval, [experiment]);
    const status = await runCli(['status', '--coordinator', coord.url, '--token', coord.adminToken]);
    assert.match(status.stdout, new RegExp(`site-c[^\\n]*\\n?[^\\n]*approval[^\\n]*${experiment}|${experiment}[^\\n]*approval`, 'i'), status.stdout);
    // The hospital's operator reviews the settings and approves.
    const listed = await runCli(['edge', 'experiments', '--state-dir', join(t.dir, 'site-c')]);
    const shown = new RegExp(`pending {2}${experiment} {2}settings ([0-9a-f]{64}).*\\n.*\\n.*privacy: DP distributed, z = 2, δ = 0\\.00001, clip 1; protection: secagg \\(20 bits, range 0\\.5, weight ≤ 1\\)`).exec(listed.stdout);
    assert.ok(shown, listed.stdout);
    const approved = await runCli(['edge', 'approve', experiment, '--state-dir', join(t.dir, 'site-c'), '--settings', shown[1]]);
    assert.equal(approved.code, 0, approved.stderr);

    const rounds = await runRounds(experiment, 3);
    assert.deepEqual(rounds.map((r) => r.status), ['completed', 'completed', 'completed', 'completed'], JSON.stringify(rounds.map((r) => r.reason)));
    const row = (s: string) => rounds.map((r) => fitOf(r, s)?.refused ?? fitOf(r, s)?.status);
    assert.deepEqual(row('site-a'), ['done', 'done', 'done', 'done']);
    assert.deepEqual(row('site-c'), ['approval_pending', 'done', 'done', 'done']);
    assert.deepEqual(row('site-d'), ['done', 'privacy_budget', 'privacy_budget', 'privacy_budget']);
    assert.deepEqual(row('site-e'), ['done', 'done', 'privacy_budget', 'privacy_budget']);
    assert.equal((await call<{ pendingApproval: string[] }>(coord, 'GET', '/v1/sites/site-c')).body.pendingApproval.length, 0, 'superseded by its approved rounds');
  });

  it('a plain experiment: site-a (requires SecAgg+) refuses by policy; the round names every refusal', async () => {
    const experiment = await createExperiment(coord, { name: 'policy-plain', minFitClients: 2, privacy: { mode: 'local', clip: 1, noiseMultiplier: Z, delta: 1e-5 } });
    const [r] = await runRounds(experiment, 1);
    assert.equal(fitOf(r, 'site-a')?.refused, 'policy');
    assert.match(fitOf(r, 'site-a')!.reason!, /this site requires secagg and the round is not securely aggregated/);
    assert.equal(fitOf(r, 'site-c')?.refused, 'approval_pending', 'a new experiment asks again');
    assert.equal(fitOf(r, 'site-d')?.refused, 'privacy_budget');
    assert.equal(r.status, 'failed');
    assert.match(r.reason!, /^4 of 5 sampled sites refused: privacy budget exhausted \(site-d, site-e\), approval pending \(site-c\), refused by site policy \(site-a\); 1 returned an update/);
  });
});
