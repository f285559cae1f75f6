/**
 * `npm run bench`: fedmed's benchmarks, printed as one JSON object (and written to --out FILE).
 *   node dist/bench/run.js [--quick] [--out bench-out/result.json] [--only training|inference|privacy|round|secagg|ckks|ota|infer-service|simulate|history|dicom]
 * `dicom` (DICOM at the edge: C-STORE ingest, JPEG 2000 burst under inference load, DICOMweb pull) runs only when asked.
 * Medians over repeated runs; the machine and Node version are recorded with the numbers.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { benchInference } from './inferenceLatency.js';
import { benchPrivacy } from './privacyBenchmark.js';
import { benchRoundRuns } from './roundBenchmark.js';
import { benchSecAgg } from './secaggBenchmark.js';
import { benchTraining } from './trainingThroughput.js';
import { benchOta } from './otaBenchmark.js';
import { benchInferService } from './inferServiceBenchmark.js';
import { benchSimulate } from './simulateBenchmark.js';
import { benchCkks } from './ckksBenchmark.js';
import { benchHistory } from './historyBenchmark.js';
import { benchDicom } from './dicomBenchmark.js';
import { benchRawTransferFloorRuns } from './rawTransferFloor.js';
import { DEFAULT_CHANNEL_LIMITS } from '../shared/protocol/messageChannel.js';

const { values, positionals } = parseArgs({ options: { quick: { type: 'boolean' }, out: { type: 'string' }, only: { type: 'string' } }, allowPositionals: true });
// `npm run bench -- round` runs only the round benchmark (positional form of --only).
const only = values.only ?? positionals[0];
const quick = values.quick ?? false;
const started = new Date().toISOString();
const result: Record<string, unknown> = {
  machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` },
  started,
};
if (!only || only === 'training') {
  result.trainingCnn28Batch32 = await benchTraining(
    [
      { backend: 'tensorflow-gpu' },
      { backend: 'tensorflow' },
      { backend: 'wasm', ortThreads: 1 },
      { backend: 'wasm', ortThreads: 2 },
      { backend: 'wasm', workers: 2 },
      { backend: 'wasm', ortThreads: 0 },
      { backend: 'cpu' },
    ],
    {
      repeats: quick ? 2 : 5,
      // The pure-JS cpu backend is ~300x slower: one batch per run is enough to measure it.
      batches: { default: quick ? 8 : 30, cpu: 1 },
    },
  );
}
if (!only || only === 'inference') {
  result.inferenceCnn28 = await benchInference({ calls: quick ? 200 : 2000, repeats: quick ? 2 : 5 });
}
if (!only || only === 'privacy') {
  result.privacy = await benchPrivacy(quick ? 2 : 5);
}
// Rounds over real sockets: N = 10 edges (in FEDMED_BENCH_EDGE_PROCESSES processes, default 2),
// d = 1000*1000 + 1000 + 1000*2 + 2 = 1,003,002 parameters; 3 warm-up rounds per run, reported apart.
const socketRound = { edges: 10, features: 1000, hidden: 1000, rounds: 10, edgeProcesses: Number(process.env.FEDMED_BENCH_EDGE_PROCESSES ?? 2) };
if (!only || only === 'round') {
  result.roundFedAvg10Edges1M = await benchRoundRuns(quick ? 1 : 3, { ...socketRound, rounds: quick ? 3 : 10 });
}
if (!only || only === 'secagg') {
  // In-process protocol cost at N in {10, 100}, d in {100k, 1M}; then a full SecAgg+ round over real sockets (N = 10, d ≈ 1M).
  result.secaggInProcess = await benchSecAgg({ sites: [10, 100], parameters: quick ? [100_000] : [100_000, 1_000_000], dropouts: [0, 0.1], repeats: quick ? 1 : 3 });
  // The default graph (complete at N = 10: threshold 7 of 10), with certificates checked and the
  // consistency round; then the floor: the same bytes between the same process layout over raw
  // WebSockets without fedmed's logic, run right after, and the ratio of the medians.
  const secaggRuns = quick ? 1 : 3;
  const secaggRound = await benchRoundRuns(secaggRuns, { ...socketRound, rounds: quick ? 3 : 10, security: 'secagg' });
  const floor = await benchRawTransferFloorRuns(secaggRuns, { connections: socketRound.edges, processes: socketRound.edgeProcesses, parameters: 1_003_002, chunkBytes: DEFAULT_CHANNEL_LIMITS.chunkBytes, rounds: quick ? 3 : 10, warmup: 3 });
  result.roundSecAgg10Edges1M_complete = secaggRound;
  result.rawTransferFloor10Edges1M = floor;
  result.secaggOverFloor = Math.round((secaggRound.medianRoundMs / floor.medianRoundMs) * 100) / 100;
  // A sparser graph for comparison (4 neighbours: share groups of 5, threshold 4).
  result.roundSecAgg10Edges1M_4neighbours = await benchRoundRuns(secaggRuns, { ...socketRound, rounds: quick ? 3 : 10, security: 'secagg', secagg: { neighbours: 4 } });
}
if (!only || only === 'ckks') {
  // In-process CKKS cost at N in {10, 100}, d in {100k, 1M} (encrypt, add, decrypt; bytes vs raw).
  result.ckksInProcess = await benchCkks({ sites: [10, 100], parameters: quick ? [100_000] : [100_000, 1_000_000], dropouts: [0, 0.1], repeats: quick ? 1 : 3 });
  // A full CKKS round over real sockets, N = 10, d ≈ 1M (edges send a fixed encrypted update).
  result.roundCkks10Edges1M = await benchRoundRuns(quick ? 1 : 3, { ...socketRound, rounds: quick ? 3 : 5, security: 'ckks' });
}
if (!only || only === 'ota') {
  result.otaCnn28 = await benchOta({ rounds: quick ? 2 : 5, sites: 3 });
}
if (!only || only === 'infer-service') {
  result.inferService = await benchInferService({ durationSeconds: quick ? 3 : 8, connections: 32, repeats: quick ? 1 : 3, swapEveryMs: 1000 });
}
if (!only || only === 'simulate') {
  // FEDMED_BENCH_SIMULATE=a,b picks scenarios (a: 100 sites ws, b: 1,000 sites memory, c: cnn-28 secagg).
  const pick = process.env.FEDMED_BENCH_SIMULATE?.split(',').map((s) => `${s.trim()}_`);
  result.simulate = benchSimulate({ repeats: quick ? 1 : 3, only: pick });
}
if (only === 'history') {
  // Long: 4,000 rounds (about 11 min on 2 cores); not part of the default run. FEDMED_BENCH_HISTORY_ROUNDS overrides.
  const rounds = Number(process.env.FEDMED_BENCH_HISTORY_ROUNDS ?? (quick ? 400 : 4000));
  result.history = benchHistory({ rounds });
  // FEDMED_BENCH_DATABASE=postgres://… (an empty database), or "local": a throwaway server (Debian's binaries).
  const database = process.env.FEDMED_BENCH_DATABASE;
  if (database === 'local') {
    const { postgresBinDir, startPostgres } = await import('../test/helpers/postgresServer.js');
    const bin = postgresBinDir();
    if (!bin) throw new Error('FEDMED_BENCH_DATABASE=local needs PostgreSQL binaries (Debian: apt install postgresql)');
    const server = await startPostgres(bin);
    try {
      result.historyPostgres = benchHistory({ rounds, database: await server.createDatabase('fedmed_history') });
    } finally {
      await server.stop();
    }
  } else if (database) result.historyPostgres = benchHistory({ rounds, database });
}
if (only === 'dicom') {
  // Needs dcmtk (storescu/storescp), Orthanc + orthanc-dicomweb and root (network namespaces); what cannot run is skipped with the reason.
  // FEDMED_BENCH_DICOM=ingest,burst,pull picks parts. Not part of the default run (a minute or two; Orthanc and the JPEG 2000 sample are optional).
  result.dicom = await benchDicom({ repeats: quick ? 1 : 3, images: 500, burstImages: 20, burstAssociations: 2, connections: Number(process.env.FEDMED_BENCH_DICOM_CONNECTIONS ?? 8), steadySeconds: quick ? 3 : 5, seriesImages: 200, parts: process.env.FEDMED_BENCH_DICOM?.split(',').map((s) => s.trim()) });
}
result.finished = new Date().toISOString();
const json = JSON.stringify(result, null, 2);
if (values.out) {
  mkdirSync(dirname(values.out), { recursive: true });
  writeFileSync(values.out, `${json}\n`);
}
process.stdout.write(`${json}\n`);
