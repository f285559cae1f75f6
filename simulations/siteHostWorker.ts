/**
 * A worker thread hosting some of a simulation's sites: one real EdgeClient per site (the same
 * client hospitals run: authentication, rounds, SecAgg+, privacy ledger), training on this
 * thread one fit at a time, connected over real WebSockets or the in-memory transport, with the
 * simulation's faults injected. Site events go to a JSON-lines log.
 */
import { createWriteStream } from 'node:fs';
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { EdgeClient, type EdgeTrainer } from '../edge-client/federation/edgeClient.js';
import { initTrainingBackend } from '../edge-client/training/trainingBackend.js';
import { localFit } from '../edge-client/training/localTrainer.js';
import type { Dataset } from '../edge-client/data/dataset.js';
import { siteFaults } from './faults.js';
import { MemoryConnector } from './memoryTransport.js';
import type { SimulationConfig } from './simulationConfig.js';

export interface SiteHostInit {
  index: number;
  sites: { name: string; stateDir: string; train: Dataset; test: Dataset }[];
  transport: SimulationConfig['transport'];
  backend: SimulationConfig['backend'];
  faults: SimulationConfig['faults'];
  seed: number;
  logPath: string;
  /** The in-memory transport's port (transport "memory"). */
  port?: MessagePort;
}

export type HostCommand = { kind: 'run'; experiment: string; label: string } | { kind: 'stop' };
export type HostEvent = { kind: 'ready' } | { kind: 'stopped' } | { kind: 'error'; message: string };

const init = workerData as SiteHostInit;
const post = (e: HostEvent) => parentPort!.postMessage(e);

/** Fits run one after another on this thread (tfjs is single-threaded here anyway). */
function serialTrainer(): EdgeTrainer {
  let queue: Promise<unknown> = Promise.resolve();
  return {
    fit: (spec, params, data, options) => {
      const run = queue.then(() => localFit(spec, params, data, options));
      queue = run.catch(() => {});
      return run;
    },
    close: async () => {},
  };
}

async function main(): Promise<void> {
  await initTrainingBackend(init.backend, { log: () => {} });
  const log = createWriteStream(init.logPath, { flags: 'a' });
  const labels = new Map<string, string>();
  const connector = init.port ? new MemoryConnector(init.port) : null;
  const trainer = serialTrainer();
  const clients = init.sites.map((s) => {
    const client = new EdgeClient({
      stateDir: s.stateDir,
      data: { train: s.train, test: s.test, source: `simulation site ${s.name}` },
      trainer,
      backoffMs: { initial: 200, max: 2000 },
      ...(connector ? { connect: () => connector.connect(s.name) } : {}),
      faults: siteFaults(init.faults, init.seed, s.name, (id) => labels.get(id) ?? id),
      log: (event, detail) => {
        if (event !== 'fit_started') log.write(`${JSON.stringify({ time: new Date().toISOString(), site: s.name, event, ...detail })}\n`);
      },
    });
    client.on('fatal', (err: Error) => post({ kind: 'error', message: `${s.name}: ${err.message}` }));
    return client;
  });
  parentPort!.on('message', (c: HostCommand) => {
    if (c.kind === 'run') labels.set(c.experiment, c.label);
    if (c.kind === 'stop') {
      void Promise.all(clients.map((cl) => cl.stop())).then(() => {
        log.end(() => {
          post({ kind: 'stopped' });
          init.port?.close();
          parentPort!.close();
        });
      });
    }
  });
  for (const c of clients) c.start();
  post({ kind: 'ready' });
}

main().catch((err: Error) => post({ kind: 'error', message: err.message }));
