/**
 * The coordinator's Prometheus metrics end to end: a coordinator and 3 edges as processes on
 * loopback run one DP round whose version is deployed over the air; GET /metrics (any API token,
 * 401 without) then shows the rounds, phases, sites online, WebSocket bytes, ε, OTA deliveries and
 * API requests, and `promtool check metrics` accepts the coordinator's and an edge inference
 * service's /metrics text.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { call, createExperiment, enrol, freePort, onlineSites, spawnCli, startCoordinator, stopProc, waitFor, type CoordinatorProc, type Proc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

/** The value of one sample (`name{labels} value`), or undefined when the text has none. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

/** promtool's path, or null (outside CI the format checks are skipped without it; in CI they fail). */
function promtool(): string | null {
  for (const p of ['/usr/bin/promtool', '/usr/local/bin/promtool']) if (existsSync(p)) return p;
  const which = spawnSync('sh', ['-c', 'command -v promtool'], { encoding: 'utf8' });
  return which.status === 0 && which.stdout.trim() ? which.stdout.trim() : null;
}

function promtoolCheck(tool: string, text: string): { code: number | null; output: string } {
  const r = spawnSync(tool, ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

describe('coordinator metrics end to end: GET /metrics after a DP round with 3 edges as processes', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  let coord: CoordinatorProc;
  const edges = new Map<string, Proc>();
  const names = ['site-a', 'site-b', 'site-c'];
  let servePort = 0;
  let token = '';
  let experiment = '';
  const scrape = async (bearer: string | null = token): Promise<Response> => fetch(new URL('/metrics', coord.url), { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  const metricsText = async (): Promise<string> => {
    const res = await scrape();
    assert.equal(res.status, 200);
    return res.text();
  };

  before(async () => {
    coord = await startCoordinator(join(t.dir, 'coordinator'), await freePort());
    servePort = await freePort();
    await Promise.all(
      names.map(async (site, i) => {
        const r = await runCli(['make-synthetic', '--out', join(t.dir, `${site}.npz`), '--n', '120', '--seed', String(40 + i), '--noise', '0.3']);
        assert.equal(r.code, 0, r.stderr);
      }),
    );
    for (const [i, site] of names.entries()) {
      await enrol(coord, site, join(t.dir, site));
      // site-a also serves inference (its /metrics is checked with promtool too).
      const serve = i === 0 ? ['--serve-port', String(servePort), '--serve-no-auth'] : [];
      edges.set(site, spawnCli(['edge', 'start', '--state-dir', join(t.dir, site), '--data', join(t.dir, `${site}.npz`), ...serve]));
    }
    token = (await call<{ token: string }>(coord, 'POST', '/v1/tokens', { role: 'deployer', name: 'prometheus' })).body.token;
    await waitFor('3 edges online', async () => (await onlineSites(coord)).length === 3);
    experiment = await createExperiment(coord, { name: 'metrics-e2e', minFitClients: 3, deploy: 'auto', privacy: { mode: 'local', clip: 1, noiseMultiplier: 2, delta: 1e-5 } });
    const start = await call(coord, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds: 1 });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    await waitFor('the round to end', async () => !(await call<{ running: boolean }>(coord, 'GET', `/v1/experiments/${experiment}`)).body.running, 90_000, 200);
  });

  after(async () => {
    for (const p of edges.values()) await stopProc(p);
    if (coord) await stopProc(coord);
    t.cleanup();
  });

  it('401 without a valid API token', async () => {
    assert.equal((await scrape(null)).status, 401);
    assert.equal((await scrape('fma_not-a-token')).status, 401);
    const res = await scrape();
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  });

  it('the series have sensible values after the round', async () => {
    const [round] = (await call<{ status: string; reason: string | null }[]>(coord, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
    assert.equal(round.status, 'completed', round.reason ?? '');
    // The version is deployed (deploy: auto): every edge fetches it.
    const text = await waitFor('3 OTA deliveries', async () => {
      const m = await metricsText();
      return (sample(m, 'fedmed_coordinator_ota_deliveries_total') ?? 0) >= 3 ? m : null;
    }, 30_000, 200);
    assert.ok(sample(text, 'fedmed_coordinator_rounds_total', { status: 'completed' })! >= 1);
    assert.equal(sample(text, 'fedmed_coordinator_rounds_total', { status: 'failed' }), 0);
    assert.equal(sample(text, 'fedmed_coordinator_round_duration_seconds_count', { status: 'completed' }), 1);
    assert.ok(sample(text, 'fedmed_coordinator_round_duration_seconds_sum', { status: 'completed' })! > 0);
    assert.equal(sample(text, 'fedmed_coordinator_phase_duration_seconds_count', { phase: 'training' }), 3);
    // The edges withhold evaluation metrics of DP experiments (their default policy): no evaluation
    // completed, and a withheld evaluation is not a refused update.
    assert.equal(sample(text, 'fedmed_coordinator_phase_duration_seconds_count', { phase: 'evaluation' }), undefined);
    assert.equal(sample(text, 'fedmed_coordinator_updates_refused_total', { reason: 'policy' }), 0);
    assert.equal(sample(text, 'fedmed_coordinator_sites_online'), 3);
    assert.ok(sample(text, 'fedmed_coordinator_ws_received_bytes_total')! > 3 * 4 * 1000, 'three model updates came in');
    assert.ok(sample(text, 'fedmed_coordinator_ws_sent_bytes_total')! > sample(text, 'fedmed_coordinator_ws_received_bytes_total')!, 'models went out for training, evaluation and OTA');
    const epsilon = sample(text, 'fedmed_coordinator_privacy_epsilon', { experiment });
    const ledger = (await call<{ epsilon: number }>(coord, 'GET', `/v1/experiments/${experiment}/privacy`)).body.epsilon;
    assert.ok(epsilon! > 0);
    assert.ok(Math.abs(epsilon! - ledger) < 1e-9, `${epsilon} vs the ledger's ${ledger}`);
    assert.ok(sample(text, 'fedmed_coordinator_ota_bytes_total')! > 1000);
    assert.equal(sample(text, 'fedmed_coordinator_updates_refused_total', { reason: 'privacy_budget' }), 0);
    assert.equal(sample(text, 'fedmed_coordinator_updates_refused_total', { reason: 'invalid_update' }), 0);
    // API requests by route pattern (the waits above polled GET /v1/experiments/:id), never by raw URL.
    assert.ok(sample(text, 'fedmed_coordinator_api_requests_total', { method: 'GET', route: '/v1/experiments/:id', status: '200' })! >= 1);
    assert.ok(sample(text, 'fedmed_coordinator_api_requests_total', { method: 'GET', route: '/metrics', status: '401' })! >= 2);
    assert.doesNotMatch(text, /route="[^"]*exp-/);
    assert.ok(sample(text, 'process_cpu_user_seconds_total')! > 0);
  });

  const needPromtool = (ctx: Mocha.Context): string => {
    const tool = promtool();
    if (!tool) {
      if (process.env.CI) assert.fail('CI must have promtool (.ci/run installs Debian\'s prometheus package)');
      console.log('      (skipped: promtool not found; apt-get install prometheus)');
      ctx.skip();
    }
    return tool!;
  };

  it('promtool check metrics accepts the coordinator\'s /metrics', async function () {
    const tool = needPromtool(this);
    const checked = promtoolCheck(tool, await metricsText());
    assert.equal(checked.code, 0, `coordinator /metrics: ${checked.output}`);
  });

  it('promtool check metrics accepts the edge inference service\'s /metrics', async function () {
    const tool = needPromtool(this);
    const edge = await fetch(`http://127.0.0.1:${servePort}/metrics`);
    assert.equal(edge.status, 200);
    const text = await edge.text();
    assert.match(text, /fedmed_infer_requests_total|fedmed_model_swaps_total/);
    const checked = promtoolCheck(tool, text);
    assert.equal(checked.code, 0, `edge /metrics: ${checked.output}`);
  });
});
