/**
 * End-to-end simulations: the real coordinator and real edge clients (in worker threads), over
 * the in-memory transport and over WebSockets, with faults; the CLI in a child process; and the
 * HTML report rendered by headless Chromium.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { parseSimulationConfig, type SimulationConfig } from '../../simulations/simulationConfig.js';
import { runSimulation } from '../../simulations/simulationRunner.js';
import type { SimulationReport } from '../../simulations/simulationReport.js';
import { makeTempDir, PROJECT_ROOT, sharedDataFile } from '../helpers/paths.js';
import { runCli } from '../helpers/runCli.js';

function config(extra: Record<string, unknown>): SimulationConfig {
  return parseSimulationConfig({
    name: 'test',
    seed: 5,
    data: { source: 'synthetic-tabular', examples: 1200, features: 8, classes: 3 },
    partition: { kind: 'dirichlet', sites: 6, alpha: 1 },
    model: { zoo: 'mlp-tabular', hidden: [8] },
    rounds: 3,
    fit: { epochs: 1, batchSize: 16, learningRate: 0.02, optimizer: 'adam' },
    minFitClients: 2,
    workers: 2,
    baselines: { local: false, pooled: true },
    ...extra,
  });
}

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

describe('simulations: end to end', function () {
  this.timeout(300_000);
  const tmp = makeTempDir();
  after(() => tmp.cleanup());
  let memoryReport: SimulationReport;

  it('in memory: every round completes, the model improves, and the same seed gives bit-identical models', async () => {
    const c = config({ transport: 'memory', strategies: [{ name: 'fedavg' }, { name: 'fedmedian' }] });
    memoryReport = await runSimulation(c, { outDir: join(tmp.dir, 'm1') });
    const again = await runSimulation(c, { outDir: join(tmp.dir, 'm2') });
    for (const [k, run] of memoryReport.runs.entries()) {
      assert.deepEqual(run.rounds.map((r) => r.status), ['completed', 'completed', 'completed'], run.label);
      assert.equal(run.rounds.every((r) => r.sites.filter((s) => s.fit === 'done').length === 6), true);
      assert.ok(run.rounds[2].global!.accuracy > run.rounds[0].global!.accuracy, `${run.label}: accuracy ${run.rounds.map((r) => r.global?.accuracy).join(' → ')}`);
      assert.ok(run.rounds.every((r) => r.bytesSent > 0 && r.bytesReceived > 0));
      assert.deepEqual(again.runs[k].rounds.map((r) => r.versionId), run.rounds.map((r) => r.versionId), `${run.label}: replay differs`);
      assert.deepEqual(again.runs[k].final, run.final);
    }
    // FedAvg and the median are different rules: different models.
    assert.notEqual(memoryReport.runs[0].rounds[2].versionId, memoryReport.runs[1].rounds[2].versionId);
    assert.ok(memoryReport.baselines.pooled!.meanAccuracy > 0.5);
    const saved = JSON.parse(readFileSync(join(tmp.dir, 'm1', 'report.json'), 'utf8')) as SimulationReport;
    assert.equal(saved.seed, 5);
    assert.equal(saved.runs.length, 2);
  });

  it('over WebSockets with faults: dropouts and stragglers are recorded, a coordinator restart aborts one round and the run still completes', async () => {
    const c = config({
      transport: 'ws',
      // A stateful server optimiser: after the restart it resumes from the moments saved with round 1's version.
      strategies: [{ name: 'fedadam', options: { eta: 0.05 } }],
      rounds: 3,
      deadlineSeconds: 2,
      faults: { dropout: { fit: 0.2, evaluate: 0.1 }, stragglers: { fraction: 0.2, delaySeconds: 4 }, coordinatorRestartAtRound: 2 },
    });
    const r = await runSimulation(c, { outDir: join(tmp.dir, 'ws') });
    const run = r.runs[0];
    assert.equal(run.coordinatorRestarts, 1);
    const statuses = run.rounds.map((x) => x.status);
    assert.equal(statuses.filter((s) => s === 'completed').length, 3, statuses.join(', '));
    const aborted = run.rounds.find((x) => x.round === 2)!;
    assert.equal(aborted.status, 'aborted');
    assert.equal(aborted.versionId, null);
    const reasons = run.rounds.flatMap((x) => x.dropouts.map((d) => d.reason));
    assert.ok(reasons.some((s) => /disconnected during fit/.test(s)), reasons.join('; '));
    assert.ok(reasons.some((s) => /missed the 2 s deadline/.test(s)), reasons.join('; '));
    assert.equal(readdirSync(join(tmp.dir, 'ws', 'coordinator', 'strategy-state')).length, 3, 'FedAdam state saved with every version');
    assert.ok(existsSync(join(tmp.dir, 'ws', 'logs', 'sites-0.jsonl')));
    assert.match(readFileSync(join(tmp.dir, 'ws', 'logs', 'sites-0.jsonl'), 'utf8'), /"event":"fault_injected"/);
  });

  it('fedmed simulate (a child process) writes the report; a bad config is one clear line', async () => {
    const cfg = join(tmp.dir, 'sim.json');
    writeFileSync(cfg, JSON.stringify({ name: 'cli', data: { source: 'synthetic-tabular', examples: 600, features: 4, classes: 2 }, partition: { kind: 'iid', sites: 3 }, model: { zoo: 'logreg' }, rounds: 2, baselines: { local: true, pooled: true } }));
    const ok = await runCli(['simulate', '--config', cfg, '--out', join(tmp.dir, 'cli-out'), '--transport', 'memory', '--strategy', 'fedavg,fedyogi'], { cwd: PROJECT_ROOT, timeoutMs: 240_000 });
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /pooled \(centralised\)/);
    assert.match(ok.stdout, /local only/);
    assert.match(ok.stdout, /fedyogi/);
    const report = JSON.parse(readFileSync(join(tmp.dir, 'cli-out', 'report.json'), 'utf8')) as SimulationReport;
    assert.deepEqual(report.runs.map((x) => x.label), ['fedavg', 'fedyogi']);
    assert.equal(report.config.transport, 'memory');

    writeFileSync(cfg, JSON.stringify({ name: 'cli', data: { source: 'synthetic-tabular' }, partition: { kind: 'dirichlet', sites: 3 }, model: { zoo: 'logreg' } }));
    const bad = await runCli(['simulate', '--config', cfg, '--out', join(tmp.dir, 'bad-out')], { cwd: PROJECT_ROOT });
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^fedmed: error: .*sim\.json: partition "dirichlet" needs partition\.alpha\n$/);
  });

  it('report.html renders offline in headless Chromium with every plot drawn', function () {
    if (!existsSync(CHROMIUM)) {
      if (process.env.CI) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (.ci/run does)`);
      console.log(`      skipped: ${CHROMIUM} is missing (apt-get install chromium; required when CI is set)`);
      return this.skip();
    }
    const html = join(tmp.dir, 'm1', 'report.html');
    const profile = join(tmp.dir, 'chromium-profile');
    const dom = execFileSync(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', `file://${html}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 60_000 });
    const figures = (dom.match(/<figure class="chart"/g) ?? []).length;
    // accuracy, AUC, per-site accuracy for each of the 2 runs, bytes
    assert.equal(figures, 5);
    assert.equal((dom.match(/class="uplot/g) ?? []).length, figures, 'every chart was drawn by uPlot');
    assert.equal((dom.match(/<canvas/g) ?? []).length, figures);
    assert.match(dom, /fedmedian/);
    const shot = join(tmp.dir, 'report.png');
    execFileSync(CHROMIUM, [...CHROMIUM_FLAGS, `--user-data-dir=${profile}`, '--window-size=1200,1600', '--virtual-time-budget=5000', `--screenshot=${shot}`, `file://${html}`], { stdio: 'ignore', timeout: 60_000 });
    const png = PNG.sync.read(readFileSync(shot));
    // The first run's line colour (palette[0] = #1f77b4) appears on the page: the plots are drawn.
    let blue = 0;
    for (let i = 0; i < png.data.length; i += 4) if (Math.abs(png.data[i] - 0x1f) < 20 && Math.abs(png.data[i + 1] - 0x77) < 20 && Math.abs(png.data[i + 2] - 0xb4) < 20) blue++;
    assert.ok(blue > 200, `${blue} plot-line pixels`);
  });

  it('BreastMNIST over 5 sites with Dirichlet(0.5): FedAvg\'s global test AUC is within 0.03 of pooled training', async function () {
    const npz = sharedDataFile('medmnist_breast/breastmnist.npz');
    if (!npz) return this.skip(); // ../shared/data is for development and CI only
    const example = JSON.parse(readFileSync(join(PROJECT_ROOT, 'simulations/examples/breastmnist-dirichlet.json'), 'utf8')) as Record<string, unknown>;
    const c = parseSimulationConfig({ ...example, data: { source: 'medmnist', path: npz }, strategies: [{ name: 'fedavg' }], transport: 'memory' });
    const r = await runSimulation(c, { outDir: join(tmp.dir, 'breast') });
    const fed = r.runs[0].final!.pooledTest.auc!;
    const pooled = r.baselines.pooled!.pooledTest.auc!;
    assert.equal(r.runs[0].rounds.filter((x) => x.status === 'completed').length, 100);
    assert.ok(fed >= pooled - 0.03, `FedAvg AUC ${fed} vs pooled ${pooled}`);
  });

  it('Heart Disease (FLamby setting): every federated strategy reaches a mean accuracy >= 0.72 and the best is within 0.01 of pooled', async function () {
    const dir = sharedDataFile('uci_heart_disease');
    if (!dir) return this.skip(); // ../shared/data is for development and CI only
    const c = parseSimulationConfig({ ...JSON.parse(readFileSync(join(PROJECT_ROOT, 'simulations/examples/heart-disease.json'), 'utf8')), data: { source: 'heart-disease', path: dir }, transport: 'memory' });
    const r = await runSimulation(c, { outDir: join(tmp.dir, 'heart') });
    const means = Object.fromEntries(r.runs.map((x) => [x.label, x.final!.meanAccuracy]));
    const pooled = r.baselines.pooled!.meanAccuracy;
    assert.deepEqual(Object.keys(means), ['fedavg', 'fedadam', 'fedyogi', 'fedprox']);
    for (const [label, m] of Object.entries(means)) assert.ok(m >= 0.72, `${label}: ${m}`);
    assert.ok(Math.max(...Object.values(means)) >= pooled - 0.01, `best ${JSON.stringify(means)} vs pooled ${pooled}`);
  });
});
