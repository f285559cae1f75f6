/**
 * Issue 17 items 4 and 5 against a real coordinator over real sockets, with scripted sites
 * (enrolled and certified for real; they answer fit_ins and eval_ins as the test says):
 * - bounded influence: a site claiming 2^53 − 1 examples with Δ = target − w has its weight
 *   clipped to maxExampleWeight (recorded in its round entry) and its update norm-bounded (3 × the
 *   round's median norm by default), so the new model is nowhere near the attacker's target;
 * - the deployment gate (deploy "gated", the default): a version whose federated evaluation is
 *   worse than the deployed version's minus the tolerance is held (reason in GET /v1/deployment and
 *   `fedmed model status`) and never offered to the sites; a good one is deployed and offered.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import WebSocket from 'ws';
import { startCoordinator, type RunningCoordinator } from '../../coordinator/coordinatorServer.js';
import { ApiAdminTarget } from '../../cli/admin/adminTarget.js';
import { certifyCoordinator } from '../../cli/admin/federationAdmin.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { parseModelSpec } from '../../shared/model/modelSpec.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import type { DeploymentView } from '../../coordinator/ota/deployment.js';
import type { RoundRecord } from '../../coordinator/store/storeSchema.js';
import { makeTempDir } from '../helpers/paths.js';
import { waitFor } from '../helpers/federation.js';
import { runCli } from '../helpers/runCli.js';
import { connectScriptedSite, type SiteSend } from '../helpers/scriptedSite.js';

const admin = ephemeralAdminKey();

/** What a scripted site sends back: its update from the global model it received, and its evaluation. */
interface Behaviour {
  fit(global: Float32Array): { delta: Float32Array; numExamples: number };
  evaluate(): { numExamples: number; accuracy: number };
}

interface ScriptedSite {
  ws: WebSocket;
  /** Versions offered to the site (model_offer), in order. */
  offers: string[];
  /** The (version, base) of each model_chunk at offset 0 the site received. */
  updates: { version: string; base: string | null }[];
  send: SiteSend;
}

async function scriptedSite(c: RunningCoordinator, name: string, behaviours: Map<string, Behaviour>): Promise<ScriptedSite> {
  const site: ScriptedSite = { ws: null as unknown as WebSocket, offers: [], updates: [], send: () => {} };
  site.ws = await connectScriptedSite(c, admin, name, (m, payload, send) => {
    site.send = send;
    const b = behaviours.get(name)!;
    if (m.type === 'fit_ins') {
      const size = layoutOf(parseModelSpec(m.spec, 'spec')).size;
      const global = new Float32Array(size);
      new Uint8Array(global.buffer).set(payload.subarray(0, size * 4));
      const { delta, numExamples } = b.fit(global);
      send({ type: 'fit_res', experiment: m.experiment, round: m.round, numExamples, metrics: { loss: 1, accuracy: 0.5 } }, new Uint8Array(delta.buffer));
    } else if (m.type === 'eval_ins') {
      const e = b.evaluate();
      send({ type: 'eval_res', experiment: m.experiment, round: m.round, numExamples: e.numExamples, metrics: { loss: 1, accuracy: e.accuracy } });
    } else if (m.type === 'model_offer') site.offers.push(m.manifest.id);
    else if (m.type === 'model_chunk' && m.offset === 0) site.updates.push({ version: m.version, base: m.base });
  });
  return site;
}

const honest = (accuracy: () => number): Behaviour => ({
  fit: (g) => ({ delta: new Float32Array(g.length).fill(0.01), numExamples: 100 }),
  evaluate: () => ({ numExamples: 100, accuracy: accuracy() }),
});

const distance = (a: Float32Array, b: Float32Array): number => Math.sqrt(a.reduce((s, x, i) => s + (x - b[i]) ** 2, 0));

describe('bounded influence of one site and the deployment gate (real coordinator, scripted sites over WebSocket)', function () {
  this.timeout(240_000);
  const t = makeTempDir();
  let c: RunningCoordinator;
  const sites = new Map<string, ScriptedSite>();
  const behaviours = new Map<string, Behaviour>();
  const names = ['hosp1', 'hosp2', 'hosp3'];
  const auth = () => ({ authorization: `Bearer ${c.adminToken}` });
  let accuracy = 0.8;

  const createExperiment = async (name: string, extra: Record<string, unknown> = {}): Promise<string> => {
    const res = await c.app.inject({ method: 'POST', url: '/v1/experiments', headers: auth(), payload: { name, model: { zoo: 'logreg', numFeatures: 6, numClasses: 2 }, minFitClients: 3, minEvaluateClients: 3, deadlineSeconds: 30, fit: { epochs: 1, batchSize: 16, learningRate: 0.1, optimizer: 'sgd' }, ...extra } });
    assert.equal(res.statusCode, 200, res.body);
    return (res.json() as { id: string }).id;
  };
  const runRound = async (experiment: string): Promise<RoundRecord> => {
    c.rounds.start(experiment, 1);
    await waitFor(`round of ${experiment}`, () => !c.rounds.isRunning(experiment), 180_000, 50);
    const rounds = (await c.app.inject({ method: 'GET', url: `/v1/experiments/${experiment}/rounds`, headers: auth() })).json() as RoundRecord[];
    const r = rounds[rounds.length - 1];
    assert.equal(r.status, 'completed', r.reason ?? '');
    return r;
  };
  const deployment = async (): Promise<DeploymentView> => (await c.app.inject({ method: 'GET', url: '/v1/deployment', headers: auth() })).json() as DeploymentView;
  const cliEnv = () => ({ env: { ...process.env, FEDMED_COORDINATOR: c.url, FEDMED_TOKEN: c.adminToken } });

  before(async () => {
    c = await startCoordinator({ dataDir: join(t.dir, 'coordinator'), port: 0, logLevel: 'silent' });
    await certifyCoordinator(new ApiAdminTarget({ url: c.url, token: c.adminToken }), admin);
    for (const n of names) {
      behaviours.set(n, honest(() => accuracy));
      sites.set(n, await scriptedSite(c, n, behaviours));
    }
    await waitFor('3 sites online', () => c.gateway.readySites().length === 3);
  });

  after(async () => {
    for (const s of sites.values()) s.ws.terminate();
    await c?.close();
    t.cleanup();
  });

  it('a site claiming 2^53 − 1 examples with Δ = target − w: weight clipped and recorded, update norm-bounded, the model stays far from the target', async () => {
    const exp = await createExperiment('poison', { deploy: 'manual' });
    const record = c.store.data.experiments.find((e) => e.id === exp)!;
    const before = Float32Array.from(c.rounds.currentParams(record));
    const target = new Float32Array(before.length).fill(5);
    behaviours.set('hosp3', {
      fit: (g) => ({ delta: target.map((x, i) => x - g[i]), numExamples: Number.MAX_SAFE_INTEGER }),
      evaluate: () => ({ numExamples: 100, accuracy }),
    });
    try {
      const r = await runRound(exp);
      const attacker = r.sites.find((s) => s.site === 'hosp3' && s.phase === 'fit')!;
      assert.deepEqual(attacker.weightClipped, { claimed: Number.MAX_SAFE_INTEGER, used: 10_000 });
      assert.equal(r.sites.find((s) => s.site === 'hosp1' && s.phase === 'fit')!.weightClipped, undefined);
      // Default norm bound: 3 × the median norm (the honest updates' 0.01·√14).
      const honestNorm = Math.sqrt(before.length * 0.01 ** 2);
      assert.equal(r.security?.mode, 'plain');
      assert.ok(Math.abs((r.security!.normBound as number) - 3 * honestNorm) < 1e-6, `normBound ${String(r.security!.normBound)}`);
      assert.equal(r.security!.normBounded, 1);
      const after = c.rounds.currentParams(c.store.data.experiments.find((e) => e.id === exp)!);
      const start = distance(before, target);
      // The model moved by at most the bound (3·honestNorm) toward the target: still ≥ 99 % of the way off.
      assert.ok(distance(before, after) <= 3 * honestNorm + 1e-5, `moved ${distance(before, after)}`);
      assert.ok(distance(after, target) > 0.99 * start, `distance to target ${distance(after, target)} of ${start}`);
      assert.ok(Math.max(...after.map((x, i) => Math.abs(x - target[i]))) > 1, 'some parameter equals the target');
    } finally {
      behaviours.set('hosp3', honest(() => accuracy));
    }
  });

  it('under DP the noised first version (accuracy 0.50 on every site of a 2-class model) with nothing deployed yet is held (below chance + tolerance), not deployed', async () => {
    const exp = await createExperiment('dp-gated', { initSeed: 9, privacy: { mode: 'local', clip: 1, noiseMultiplier: 2, delta: 1e-5 } });
    accuracy = 0.5;
    const v = (await runRound(exp)).versionId!;
    const view = await waitFor('held', async () => ((await deployment()).held?.version === v ? deployment() : null));
    assert.match(view.held!.reason, /accuracy 0\.5000 over 3 site\(s\) is below chance \(0\.5000, nothing deployed with a federated evaluation\) \+ tolerance 0\.02/);
    for (const s of sites.values()) assert.ok(!s.offers.includes(v));
  });

  it('deploy "gated" (the default): a good first version is deployed and offered; a worse one is held (API and CLI) and never offered; a good one is deployed', async () => {
    const exp = await createExperiment('gated', { model: { zoo: 'logreg', numFeatures: 2000, numClasses: 2 } }); // (large enough for a delta to beat the full model)
    const config = c.store.data.experiments.find((e) => e.id === exp)!.config;
    assert.equal(config.deploy, 'gated');
    assert.equal(config.maxExampleWeight, 10_000);

    accuracy = 0.8;
    const v1 = (await runRound(exp)).versionId!;
    let view = await waitFor('v1 deployed', async () => ((await deployment()).current === v1 ? deployment() : null));
    assert.equal(view.lastGate?.decision, 'deployed');
    assert.match(view.lastGate!.reason, /accuracy 0\.8000 over 3 site\(s\) ≥ chance \(0\.5000/);
    for (const s of sites.values()) await waitFor('v1 offered', () => s.offers.includes(v1));

    // From here the sites update one parameter only: v1, v2 and v3 differ in it alone, so a delta
    // between them is smaller than the full model (the model_fetch.base check below needs deltas).
    const oneParameter = (g: Float32Array): { delta: Float32Array; numExamples: number } => ({ delta: new Float32Array(g.length).fill(0.01, 0, 1), numExamples: 100 });
    for (const n of names) behaviours.set(n, { ...honest(() => accuracy), fit: oneParameter });
    accuracy = 0.7; // below 0.8 − 0.02
    const v2 = (await runRound(exp)).versionId!;
    view = await waitFor('v2 held', async () => ((await deployment()).held?.version === v2 ? deployment() : null));
    assert.equal(view.current, v1);
    assert.equal(view.held!.decision, 'held');
    assert.match(view.held!.reason, /accuracy 0\.7000 over 3 site\(s\) is below deployed version [0-9a-f]{12}'s 0\.8000 − tolerance 0\.02/);
    assert.ok(view.log.some((l) => l.action === 'held' && l.version === v2));
    const status = await runCli(['model', 'status'], cliEnv());
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(`held ${v2.slice(0, 12)} \\(round 2\\) by the deployment gate: accuracy 0\\.7000`));

    accuracy = 0.79; // within the tolerance of 0.8
    const v3 = (await runRound(exp)).versionId!;
    view = await waitFor('v3 deployed', async () => ((await deployment()).current === v3 ? deployment() : null));
    assert.equal(view.held, null);
    for (const s of sites.values()) await waitFor('v3 offered', () => s.offers.includes(v3));
    for (const s of sites.values()) assert.ok(!s.offers.includes(v2), `${v2} was offered`);

    // model_fetch.base: a delta only against a version offered to the site. Against the held v2
    // (never offered), target − delta would hand the site v2: it gets the full model instead.
    const s1 = sites.get('hosp1')!;
    const fetched = async (base: string): Promise<string | null> => {
      const before = s1.updates.length;
      s1.send({ type: 'model_fetch', version: v3, base, offset: 0 });
      return (await waitFor(`the update of v3 against ${base.slice(0, 8)}`, () => (s1.updates.length > before ? s1.updates[before] : null))).base;
    };
    assert.equal(await fetched(v1), v1, 'a delta against v1, which was offered');
    assert.equal(await fetched(v2), null, 'the full model, not a delta against the held v2');
    for (const n of names) behaviours.set(n, honest(() => accuracy));
  });

  it('too few sites reporting an evaluation: held with the reason (gate.minSites)', async () => {
    const exp = await createExperiment('gated-few', { initSeed: 7, gate: { minSites: 4 } });
    accuracy = 0.95;
    const v = (await runRound(exp)).versionId!;
    const view = await waitFor('held', async () => ((await deployment()).held?.version === v ? deployment() : null));
    assert.match(view.held!.reason, /accuracy from 3 site\(s\); the deployment gate needs at least 4 \(gate\.minSites\)/);
    for (const s of sites.values()) assert.ok(!s.offers.includes(v));
  });
});
