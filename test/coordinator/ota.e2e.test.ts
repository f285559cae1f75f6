/**
 * OTA end to end with real processes: a coordinator and two edges serving inference over https
 * with clinician and monitor tokens (as in a hospital). Rounds publish versions through the
 * deployment gate (the default `deploy: "gated"`) that reach the edges as signed deltas and are
 * hot-swapped while a load generator keeps calling one edge's /v1/infer (zero failed requests, every answer tagged with
 * the version that produced it, checked against that version's own output); then a canary,
 * its rollback, and a rollback by hand at an edge.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Agent } from 'node:https';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { buildOnnxModel } from '../../models/onnxModel.js';
import { OnnxInferenceSession } from '../../edge-client/inference/onnxInferenceSession.js';
import { decodeParamsFile } from '../../shared/model/paramsFile.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { zooModel } from '../../models/zoo.js';
import { SeededRng } from '../../shared/random/seededRng.js';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';
import { httpsCall, keepAliveAgent, type HttpsAnswer } from '../helpers/httpsClient.js';
import { loopbackCertificate } from '../helpers/testCertificate.js';

/**
 * The canary and rollbacks below publish older, less trained versions to a site serving a newer
 * one on purpose; the site policy's default relative accuracy floor (an offered version at most
 * 0.05 below the serving one on the local test split) would refuse them. It has its own test
 * (test/adversary/relativeFloor.test.ts); here it is off.
 */
const NO_RELATIVE_FLOOR = ['--max-accuracy-drop', 'off'];

interface Health {
  ok: boolean;
  version: string | null;
  executionProvider: string | null;
  swaps: number;
  coordinator: { state: string };
  offline: boolean;
}

interface Deployment {
  current: string | null;
  canary: { version: string; sites: string[] } | null;
  sites: { site: string; target: string | null; active: string | null; lastReport: { version: string; status: string; reason?: string } | null; lastRefusal: { version: string; status: string } | null }[];
  otaBytesSent: Record<string, number>;
}

interface InferReply {
  probabilities: number[];
  predictedClass: number;
  version: string;
  executionProvider: string;
  batchSize: number;
}

describe('OTA end to end: signed deltas hot-swapped under inference load (coordinator + 2 edges as processes)', function () {
  this.timeout(300_000);
  const t = makeTempDir();
  let coord: CoordinatorProc;
  const edges = new Map<string, Proc>();
  const servePorts = new Map<string, number>();
  let experiment = '';
  const example = new SeededRng(3);
  const input = Array.from({ length: 28 * 28 }, () => example.next());

  const tls = { ca: '', tokens: new Map<string, { clinician: string; monitor: string }>(), agents: new Map<string, Agent>() };
  const to = (site: string) => ({ port: servePorts.get(site)!, ca: tls.ca, agent: tls.agents.get(site) });
  const health = async (site: string): Promise<Health> => (await httpsCall(to(site), '/healthz', { token: tls.tokens.get(site)!.monitor })).body as unknown as Health;
  const deployment = async (): Promise<Deployment> => (await call<Deployment>(coord, 'GET', '/v1/deployment')).body;
  const infer = (site: string, body: string | Buffer, type = 'application/json'): Promise<HttpsAnswer> => httpsCall(to(site), '/v1/infer', { method: 'POST', type, body, token: tls.tokens.get(site)!.clinician });
  const runRounds = async (n: number): Promise<string[]> => {
    const r = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: n });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await waitFor('the rounds to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 180_000, 200);
    const rounds = (await call<{ status: string; versionId: string | null }[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    return rounds.slice(-n).map((x) => {
      assert.equal(x.status, 'completed');
      return x.versionId!;
    });
  };
  const runsOn = (site: string, version: string): Promise<boolean> => waitFor(`${site} to serve ${version.slice(0, 8)}`, async () => (await health(site)).version === version, 60_000, 100);

  before(async function () {
    const pem = loopbackCertificate(t.dir, 'edge');
    if (!pem) return this.skip();
    tls.ca = readFileSync(pem.cert, 'utf8');
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    for (const [site, shift] of [['site-a', '0'], ['site-b', '0.1']]) {
      const r = await runCli(['make-synthetic', '--out', join(t.dir, `${site}.npz`), '--n', '200', '--seed', String(site.charCodeAt(5)), '--shift', shift]);
      assert.equal(r.code, 0, r.stderr);
      await enrol(coord, site, join(t.dir, site));
      const port = await freePort();
      servePorts.set(site, port);
      const token = async (role: string): Promise<string> => {
        const r = await runCli(['edge', 'token', 'create', '--state-dir', join(t.dir, site), '--role', role]);
        assert.equal(r.code, 0, r.stderr);
        return r.stdout.trim();
      };
      tls.tokens.set(site, { clinician: await token('clinician'), monitor: await token('monitor') });
      tls.agents.set(site, keepAliveAgent(tls.ca));
      edges.set(site, spawnCli(['edge', 'start', '--state-dir', join(t.dir, site), '--data', join(t.dir, `${site}.npz`), '--serve-port', String(port), '--serve-tls-cert', pem.cert, '--serve-tls-key', pem.key, '--max-batch', '16', '--max-wait-ms', '1', ...NO_RELATIVE_FLOOR]));
    }
    await waitFor('2 edges online', async () => (await onlineSites(coord)).length === 2);
    // Gated (the default). Tolerance 0.1: the first version must reach chance + 0.1 (0.6), later
    // ones the deployed accuracy − 0.1, so training noise between rounds does not hold a version.
    experiment = await createExperiment(coord, { name: 'ota-e2e', initSeed: 5, gate: { tolerance: 0.1 }, fit: { epochs: 2, batchSize: 32, learningRate: 0.001, optimizer: 'adam' } });
  });

  after(async () => {
    for (const a of tls.agents.values()) a.destroy();
    for (const p of edges.values()) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  let versions: string[] = [];

  it('before any deployment the service answers 503 with a reason, and /healthz says so', async () => {
    const res = await infer('site-a', JSON.stringify({ input }));
    assert.equal(res.status, 503);
    assert.match(String(res.body.message), /no model version is loaded yet/);
    const h = await httpsCall(to('site-a'), '/healthz', { token: tls.tokens.get('site-a')!.monitor });
    assert.equal(h.status, 503);
  });

  it('three OTA swaps under constant load: zero failed requests, each answer tagged with (and equal to the output of) its version', async () => {
    const [v1] = await runRounds(1);
    await runsOn('site-a', v1);
    let stop = false;
    const answers: InferReply[] = [];
    const failures: string[] = [];
    const badAnswers: number[] = [];
    const loop = async (): Promise<void> => {
      while (!stop) {
        try {
          const res = await infer('site-a', JSON.stringify({ input }));
          if (res.status !== 200) failures.push(`${res.status} ${JSON.stringify(res.body)}`);
          else answers.push(res.body as unknown as InferReply);
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    };
    // Malformed requests interleaved with the load: each gets its 4xx, none disturbs the others.
    const badLoop = async (): Promise<void> => {
      while (!stop) {
        badAnswers.push((await infer('site-a', JSON.stringify({ input: input.slice(1) }))).status);
        badAnswers.push((await infer('site-a', Buffer.from('not a png'), 'image/png')).status);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    const loops = [loop(), loop(), loop(), loop(), badLoop()];
    const next = await runRounds(3);
    await runsOn('site-a', next[2]);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(loops);
    versions = [v1, ...next];

    assert.deepEqual(failures, [], 'no request failed during the swaps');
    assert.ok(answers.length > 200, `only ${answers.length} answers`);
    assert.ok(badAnswers.length > 0 && badAnswers.every((s) => s === 422), `malformed requests answered ${[...new Set(badAnswers)].join(', ')}`);
    const seen = [...new Set(answers.map((a) => a.version))];
    assert.ok(seen.every((v) => versions.includes(v)), 'every tag is a published version');
    assert.ok(seen.includes(v1) && seen.includes(next[2]), `answers from the first and last version (saw ${seen.length})`);
    // Each tag is the version that produced the answer: same output as that version run here.
    for (const v of seen) {
      const res = await fetch(new URL(`/v1/versions/${v}/params`, coord.url), { headers: { authorization: `Bearer ${coord.adminToken}` } });
      const { spec, params } = decodeParamsFile(new Uint8Array(await res.arrayBuffer()), v);
      const session = await OnnxInferenceSession.create(buildOnnxModel(spec, params), { providers: ['cpu'] });
      const want = (await session.run(Float32Array.from(input), 1)).probabilities;
      await session.release();
      for (const a of answers.filter((x) => x.version === v)) for (let c = 0; c < 2; c++) assert.ok(Math.abs(a.probabilities[c] - want[c]) < 1e-5, `version ${v.slice(0, 8)} answer ${a.probabilities} vs ${Array.from(want)}`);
    }
    const h = await health('site-a');
    assert.ok(h.swaps >= 3, `swaps ${h.swaps}`);
    assert.equal(h.coordinator.state, 'connected');
    assert.equal(h.executionProvider, 'cpu');
  });

  it('updates travel as deltas: OTA bytes per version well under the full model', async () => {
    const metrics = String((await httpsCall(to('site-a'), '/metrics', { token: tls.tokens.get('site-a')!.monitor })).body.text);
    const ota = Number(/^fedmed_ota_bytes_total (\S+)/m.exec(metrics)![1]);
    const full = layoutOf(zooModel('cnn-28', { numClasses: 2 })).size * 4;
    assert.ok(ota > 0 && ota < 0.8 * versions.length * full, `OTA bytes ${ota} for ${versions.length} versions (full model ${full} B)`);
    for (const name of ['fedmed_infer_request_duration_seconds_bucket', 'fedmed_infer_batch_size_bucket', 'fedmed_model_swaps_total', 'fedmed_model_info{version=']) assert.ok(metrics.includes(name), `metrics lack ${name}`);
  });

  it('canary: a version published to site-b only, then rolled back; status per site via the API and CLI', async () => {
    const [v1, , , v4] = versions;
    await runsOn('site-b', v4);
    const env = { env: { ...process.env, FEDMED_COORDINATOR: coord.url, FEDMED_TOKEN: coord.adminToken } };
    let r = await runCli(['model', 'publish', v1.slice(0, 12), '--sites', 'site-b'], env);
    assert.equal(r.code, 0, r.stderr);
    await runsOn('site-b', v1);
    assert.equal((await health('site-a')).version, v4, 'site-a is not in the canary');
    await waitFor('site-b to report v1 active', async () => (await deployment()).sites.find((s) => s.site === 'site-b')?.active === v1);
    r = await runCli(['model', 'rollback'], env);
    assert.equal(r.code, 0, r.stderr);
    await runsOn('site-b', v4);
    r = await runCli(['model', 'status', '--json'], env);
    const view = JSON.parse(r.stdout) as Deployment;
    assert.equal(view.canary, null);
    assert.equal(view.current, v4);
    // A PNG of the model's size works too.
    const png = new PNG({ width: 28, height: 28 });
    png.data.fill(128);
    const res = await infer('site-b', PNG.sync.write(png), 'image/png');
    assert.equal(res.status, 200);
    assert.equal((res.body as unknown as InferReply).version, v4);
  });

  it('canary promoted to every site, then the federation rolled back to the version before', async () => {
    const [, v2, , v4] = versions;
    const env = { env: { ...process.env, FEDMED_COORDINATOR: coord.url, FEDMED_TOKEN: coord.adminToken } };
    assert.equal((await runCli(['model', 'publish', v2.slice(0, 12), '--sites', 'site-b'], env)).code, 0);
    await runsOn('site-b', v2);
    assert.equal((await runCli(['model', 'promote'], env)).code, 0);
    await runsOn('site-a', v2);
    assert.equal((await deployment()).current, v2);
    const r = await runCli(['model', 'rollback'], env);
    assert.equal(r.code, 0, r.stderr);
    await runsOn('site-a', v4);
    await runsOn('site-b', v4);
    assert.equal((await deployment()).current, v4);
  });

  it('"fedmed edge rollback" at a site: it serves the previous version and the coordinator sees the rollback', async () => {
    const [, v2, , v4] = versions;
    // site-a ran ... v3, v4, v2 (promoted), v4 (rolled back): the version before v4 is v2.
    const r = await runCli(['edge', 'rollback', '--state-dir', join(t.dir, 'site-a')]);
    assert.equal(r.code, 0, r.stderr);
    await runsOn('site-a', v2);
    const report = await waitFor('the rollback report', async () => (await deployment()).sites.find((s) => s.site === 'site-a' && s.active === v2 && s.lastRefusal?.status === 'rolled_back' && s.lastRefusal.version === v4));
    assert.ok(report);
  });

  it('offline autonomy: with the coordinator gone the edge keeps serving its last good model', async () => {
    await stopProc(coord);
    await waitFor('the edge to notice', async () => (await health('site-a')).offline, 30_000, 100);
    const res = await infer('site-a', JSON.stringify({ input }));
    assert.equal(res.status, 200);
    assert.equal((res.body as unknown as InferReply).version, versions[1]);
  });
});
