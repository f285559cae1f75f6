/**
 * One long in-memory simulation for `npm run bench -- history` (its own process, so RSS is its
 * own): 20 sites × ROUNDS rounds of logistic regression over the in-memory transport, then the
 * round timings read back from the coordinator's store. Prints one JSON line.
 *   node dist/bench/historyChild.js ROUNDS OUT_DIR [DATABASE_URL]
 */
import { join } from 'node:path';
import { runSimulation } from '../simulations/simulationRunner.js';
import { parseSimulationConfig } from '../simulations/simulationConfig.js';
import { CoordinatorStore } from '../coordinator/store/coordinatorStore.js';

const [roundsArg, outDir, database] = process.argv.slice(2);
const rounds = Number(roundsArg);
const config = parseSimulationConfig({
  name: 'history',
  seed: 1,
  data: { source: 'synthetic-tabular', examples: 4000, features: 16, classes: 2 },
  partition: { kind: 'iid', sites: 20 },
  model: { zoo: 'logreg' },
  rounds,
  transport: 'memory',
  workers: 2,
  fit: { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'sgd' },
  minFitClients: 2,
  baselines: { local: false, pooled: false },
});
// RSS after each 100th round (the whole process: coordinator and the sites' worker threads).
const rss: { round: number; rssMb: number; heapMb: number; externalMb: number }[] = [];
await runSimulation(config, {
  outDir,
  ...(database ? { database } : {}),
  onProgress: (p) => {
    if (p.status !== 'aborted' && p.round % 100 === 0) {
      const m = process.memoryUsage();
      rss.push({ round: p.round, rssMb: Math.round(m.rss / 2 ** 20), heapMb: Math.round(m.heapUsed / 2 ** 20), externalMb: Math.round(m.external / 2 ** 20) });
    }
  },
});
const store = await CoordinatorStore.open(join(outDir, 'coordinator'), { database });
const experiment = store.data.experiments[0].id;
const timings = (await store.rounds(experiment)).map((r) => {
  const t = r.timings;
  return {
    round: r.round,
    status: r.status,
    configureMs: t.configureMs,
    // Publishing the version: its row, the round's row and the document, one transaction.
    persistMs: t.publishMs,
    totalMs: t.totalMs,
  };
});
await store.close();
process.stdout.write(`${JSON.stringify({ timings, rss, storeLocation: store.location })}\n`);
