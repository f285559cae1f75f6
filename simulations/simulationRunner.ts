/**
 * Runs a simulation: loads and splits the data, starts a real coordinator (in this process),
 * enrols every site through the real enrolment API, hosts the sites' real EdgeClients in worker
 * threads (over WebSockets on loopback or the in-memory transport), then for each strategy
 * creates an experiment through the REST API and runs its rounds one at a time — injecting the
 * configured faults, restarting the coordinator when asked — and finally scores the models and
 * the baselines and writes report.json and report.html.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { MessageChannel, Worker } from 'node:worker_threads';
import { startCoordinator, type RunningCoordinator } from '../coordinator/coordinatorServer.js';
import { enrollSite } from '../edge-client/federation/enrollment.js';
import { ApiAdminTarget } from '../cli/admin/adminTarget.js';
import { addSite, certifyCoordinator, certifySite } from '../cli/admin/federationAdmin.js';
import { ephemeralAdminKey } from '../shared/secure/trust/adminKey.js';
import { initTrainingBackend } from '../edge-client/training/trainingBackend.js';
import { zooModel } from '../models/zoo.js';
import { FedmedError } from '../shared/errors.js';
import { initParams } from '../shared/model/initParams.js';
import { layoutOf } from '../shared/model/parameterLayout.js';
import type { ModelSpec } from '../shared/model/modelSpec.js';
import type { RoundRecord } from '../coordinator/store/storeSchema.js';
import { localBaseline, pooledBaseline, scoreModel } from './baselines.js';
import { MemoryHub } from './memoryTransport.js';
import { writeReportHtml } from './reportHtml.js';
import type { HostCommand, HostEvent, SiteHostInit } from './siteHostWorker.js';
import { loadFederationData, type FederationData } from './siteData.js';
import type { SimulationConfig } from './simulationConfig.js';
import type { RoundReport, RunReport, SimulationReport } from './simulationReport.js';

export class SimulationError extends FedmedError {
  constructor(message: string) {
    super('SIMULATION', message);
  }
}

export interface SimulationProgress {
  run: string;
  runIndex: number;
  runs: number;
  round: number;
  rounds: number;
  status: string;
  accuracy: number | null;
}

export interface SimulationOptions {
  outDir: string;
  /** PostgreSQL URL for the coordinator's records (default: SQLite in its data dir). */
  database?: string;
  onProgress?: (p: SimulationProgress) => void;
  onLog?: (message: string) => void;
}

/** The model a simulation trains, sized to its data. */
export function simulationSpec(config: SimulationConfig, data: Pick<FederationData, 'exampleShape' | 'numClasses'>): ModelSpec {
  const shape = data.exampleShape;
  return zooModel(config.model.zoo, shape.length === 1 ? { numClasses: data.numClasses, numFeatures: shape[0], hidden: config.model.hidden } : { numClasses: data.numClasses, imageSize: shape[0], channels: shape[2], hidden: config.model.hidden });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class SiteHosts {
  private readonly workers: Worker[] = [];
  readonly hub = new MemoryHub();

  static async start(config: SimulationConfig, data: FederationData, stateDir: (site: string) => string, logDir: string): Promise<SiteHosts> {
    const hosts = new SiteHosts();
    const count = Math.min(config.workers, data.sites.length);
    const ready: Promise<void>[] = [];
    for (let w = 0; w < count; w++) {
      const sites = data.sites.filter((_, k) => k % count === w).map((s) => ({ name: s.name, stateDir: stateDir(s.name), train: s.train, test: s.test }));
      let port: MessageChannel | undefined;
      if (config.transport === 'memory') {
        port = new MessageChannel();
        hosts.hub.addPort(port.port1);
      }
      const init: SiteHostInit = { index: w, sites, transport: config.transport, backend: config.backend, faults: config.faults, seed: config.seed, logPath: join(logDir, `sites-${w}.jsonl`), port: port?.port2 };
      const worker = new Worker(new URL('./siteHostWorker.js', import.meta.url), { workerData: init, transferList: port ? [port.port2] : [] });
      hosts.workers.push(worker);
      ready.push(
        new Promise((resolve, reject) => {
          worker.on('message', (e: HostEvent) => {
            if (e.kind === 'ready') resolve();
            if (e.kind === 'error') reject(new SimulationError(`site host ${w}: ${e.message}`));
          });
          worker.once('error', reject);
        }),
      );
    }
    await Promise.all(ready);
    return hosts;
  }

  tell(c: HostCommand): void {
    for (const w of this.workers) w.postMessage(c);
  }

  async stop(): Promise<void> {
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => void w.terminate().then(() => resolve()), 10_000);
            w.on('message', (e: HostEvent) => e.kind === 'stopped' && (clearTimeout(timer), resolve()));
            w.once('exit', () => (clearTimeout(timer), resolve()));
            w.postMessage({ kind: 'stop' } satisfies HostCommand);
          }),
      ),
    );
    await Promise.all(this.workers.map((w) => w.terminate()));
    this.hub.close();
  }
}

export async function runSimulation(config: SimulationConfig, o: SimulationOptions): Promise<SimulationReport> {
  const t0 = performance.now();
  const log = o.onLog ?? (() => {});
  let peakRss = process.memoryUsage().rss;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200).unref();
  const coordinatorDir = join(o.outDir, 'coordinator');
  const sitesDir = join(o.outDir, 'sites');
  const logDir = join(o.outDir, 'logs');
  for (const d of [coordinatorDir, sitesDir, logDir]) rmSync(d, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });

  const data = loadFederationData(config);
  const spec = simulationSpec(config, data);
  const init = initParams(spec, config.seed);
  log(`${data.description}; model ${spec.name} (${layoutOf(spec).size} parameters)`);
  await initTrainingBackend(config.backend, { log: () => {} });

  let coordinator: RunningCoordinator = await startCoordinator({ dataDir: coordinatorDir, database: o.database, port: 0, logLevel: 'silent' });
  const port = Number(new URL(coordinator.url).port);
  const stateDir = (site: string) => join(sitesDir, site);
  // The admin's steps, through the real API with a federation admin key that lives only in this
  // run: certify the coordinator; for each site a join token, enrolment (key pairs, registration)
  // and the certificate of the keys it enrolled, a few sites at a time.
  const admin = ephemeralAdminKey();
  const adminApi = new ApiAdminTarget({ url: coordinator.url, token: coordinator.adminToken });
  await certifyCoordinator(adminApi, admin);
  for (let i = 0; i < data.sites.length; i += 32) {
    await Promise.all(
      data.sites.slice(i, i + 32).map(async (s) => {
        const { token } = await addSite(adminApi, s.name, admin);
        const enrolled = await enrollSite(coordinator.url, token, stateDir(s.name));
        await certifySite(adminApi, admin, s.name, { fingerprint: enrolled.siteFingerprint });
      }),
    );
  }
  const hosts = await SiteHosts.start(config, data, stateDir, logDir);
  hosts.hub.gateway = coordinator.gateway;
  const allOnline = async (timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (coordinator.gateway.readySites().length < data.sites.length && Date.now() < deadline) await sleep(20);
    return coordinator.gateway.readySites().length;
  };
  if ((await allOnline(60_000)) < data.sites.length) log(`only ${coordinator.gateway.readySites().length} of ${data.sites.length} sites connected within 60 s`);
  log(`${data.sites.length} sites connected over ${config.transport === 'ws' ? 'WebSockets' : 'the in-memory transport'} from ${Math.min(config.workers, data.sites.length)} worker thread(s)`);

  const restart = async () => {
    log('restarting the coordinator');
    hosts.hub.gateway = null;
    await coordinator.close('simulated coordinator restart');
    coordinator = await startCoordinator({ dataDir: coordinatorDir, database: o.database, port, logLevel: 'silent' });
    hosts.hub.gateway = coordinator.gateway;
  };

  const phases: Record<string, number> = { setupSeconds: (performance.now() - t0) / 1000 };
  const runs: RunReport[] = [];
  try {
    for (const [runIndex, s] of config.strategies.entries()) {
      const label = s.label ?? s.name;
      const tr = performance.now();
      const created = await coordinator.app.inject({
        method: 'POST',
        url: '/v1/experiments',
        headers: { authorization: `Bearer ${coordinator.adminToken}` },
        payload: {
          name: `${config.name} / ${label}`,
          model: { spec },
          initSeed: config.seed,
          strategy: s.name,
          ...(s.options ? { strategyOptions: s.options } : {}),
          seed: config.seed,
          fractionFit: config.fractionFit,
          minFitClients: config.minFitClients,
          fractionEvaluate: config.fractionEvaluate,
          minEvaluateClients: 1,
          deadlineSeconds: config.deadlineSeconds,
          fit: config.fit,
          security: config.security,
          ...(config.secagg ? { secagg: config.secagg } : {}),
          ...(config.privacy ? { privacy: config.privacy } : {}),
          deploy: 'manual',
          deterministic: true,
        },
      });
      if (created.statusCode !== 200) throw new SimulationError(`run ${label}: the coordinator refused the experiment: ${created.json<{ message: string }>().message}`);
      const experiment = created.json<{ id: string }>().id;
      hosts.tell({ kind: 'run', experiment, label });
      let restarts = 0;
      for (let i = 0; i < config.rounds; i++) {
        // One round at a time, each after every site is back (sites dropped by a fault reconnect
        // within the backoff), so that sampling sees the same sites in every replay.
        await allOnline(15_000);
        let round = (await coordinator.store.lastRoundNumber(experiment)) + 1;
        await coordinator.rounds.start(experiment, 1);
        if (config.faults.coordinatorRestartAtRound === round) {
          // Restart while the round's fit phase is open: the round is aborted, and redone.
          while (coordinator.rounds.isRunning(experiment) && !((await coordinator.store.round(experiment, round))?.sites.length ?? 0)) await sleep(5);
          await restart();
          restarts++;
          o.onProgress?.({ run: label, runIndex, runs: config.strategies.length, round, rounds: config.rounds, status: 'aborted', accuracy: null });
          // The restarted coordinator resumes the run: it redoes the round as the next one.
          round++;
        }
        while (coordinator.rounds.isRunning(experiment)) await sleep(10);
        const record = await coordinator.store.round(experiment, round);
        o.onProgress?.({ run: label, runIndex, runs: config.strategies.length, round: i + 1, rounds: config.rounds, status: record?.status ?? 'unknown', accuracy: record?.evalMetrics?.accuracy ?? null });
      }
      const exp = coordinator.store.data.experiments.find((e) => e.id === experiment)!;
      const rounds = (await coordinator.store.rounds(experiment)).map(roundReport);
      const final = exp.roundsCompleted > 0 ? scoreModel(spec, coordinator.store.loadParams(exp.currentVersion, exp.spec), data) : null;
      runs.push({ label, strategy: s.name, options: s.options ?? {}, experiment, rounds, final, coordinatorRestarts: restarts, wallSeconds: (performance.now() - tr) / 1000 });
      log(`${label}: ${exp.roundsCompleted} of ${config.rounds} rounds completed${final ? `, final mean site accuracy ${final.meanAccuracy.toFixed(3)}` : ''}`);
    }
  } finally {
    const tt = performance.now();
    await hosts.stop();
    await coordinator.close('simulation finished');
    phases.teardownSeconds = (performance.now() - tt) / 1000;
  }

  // The baselines get the federated runs' training budget: rounds × local epochs (or steps),
  // unless the config fixes their epochs.
  const budget = config.baselines.epochs !== undefined ? { epochs: config.baselines.epochs } : config.fit.steps !== undefined ? { epochs: 1, steps: config.rounds * config.fit.steps } : { epochs: config.rounds * config.fit.epochs };
  const fit = { ...budget, batchSize: config.fit.batchSize, learningRate: config.fit.learningRate, optimizer: config.fit.optimizer, seed: config.seed };
  const baselines: SimulationReport['baselines'] = {};
  const tb = performance.now();
  if (config.baselines.pooled) baselines.pooled = await pooledBaseline(spec, init, data, fit);
  if (config.baselines.local) baselines.local = await localBaseline(spec, init, data, fit);
  phases.baselinesSeconds = (performance.now() - tb) / 1000;
  clearInterval(rssTimer);
  peakRss = Math.max(peakRss, process.resourceUsage().maxRSS * 1024);

  const report: SimulationReport = {
    name: config.name,
    seed: config.seed,
    createdAt: new Date().toISOString(),
    config,
    data: data.description,
    model: { name: spec.name, parameters: layoutOf(spec).size },
    sites: data.sites.map((s) => ({ name: s.name, train: s.train.y.length, test: s.test.y.length, trainLabels: Array.from({ length: data.numClasses }, (_, c) => s.train.y.filter((y) => y === c).length) })),
    runs,
    baselines,
    environment: { node: process.version, platform: `${process.platform}-${process.arch}`, cpus: availableParallelism(), transport: config.transport, workers: Math.min(config.workers, data.sites.length) },
    wallSeconds: (performance.now() - t0) / 1000,
    phases,
    peakRssMb: Math.round(peakRss / 2 ** 20),
  };
  mkdirSync(o.outDir, { recursive: true });
  writeFileSync(join(o.outDir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeReportHtml(join(o.outDir, 'report.html'), report);
  return report;
}

function roundReport(r: RoundRecord): RoundReport {
  const bySite = new Map<string, RoundReport['sites'][number]>();
  for (const e of r.sites) {
    const s = bySite.get(e.site) ?? { site: e.site };
    if (e.phase === 'fit') s.fit = e.status;
    else {
      s.evaluate = e.status;
      if (e.metrics) Object.assign(s, { accuracy: e.metrics.accuracy, loss: e.metrics.loss, ...(e.metrics.auc !== undefined ? { auc: e.metrics.auc } : {}) });
    }
    if (e.reason) s.reason = e.reason;
    if (e.phase === 'fit' && e.seconds !== undefined) s.seconds = e.seconds;
    bySite.set(e.site, s);
  }
  const evaluated = [...bySite.values()].filter((s) => s.accuracy !== undefined);
  return {
    round: r.round,
    status: r.status,
    reason: r.reason,
    versionId: r.versionId,
    global: r.evalMetrics ? { loss: r.evalMetrics.loss, accuracy: r.evalMetrics.accuracy, auc: r.evalMetrics.auc } : null,
    meanSiteAccuracy: evaluated.length ? evaluated.reduce((a, s) => a + s.accuracy!, 0) / evaluated.length : null,
    sites: [...bySite.values()],
    dropouts: r.sites.filter((e) => e.status === 'dropped' || e.status === 'failed').map((e) => ({ site: e.site, phase: e.phase, status: e.status, reason: e.reason ?? '' })),
    epsilon: r.privacy?.epsilon ?? null,
    bytesSent: r.bytesSent,
    bytesReceived: r.bytesReceived,
    timings: r.timings,
  };
}
