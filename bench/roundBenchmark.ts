/**
 * Round time of FedAvg, plain or SecAgg+ (configure -> aggregated version persisted) for N edges and a
 * d-parameter model, all on loopback, with edges that send fixed updates (no training); plus
 * the coordinator's peak RSS (VmHWM). The coordinator and the edges are separate processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { ApiAdminTarget } from '../cli/admin/adminTarget.js';
import { addSite, certifyCoordinator, certifySite } from '../cli/admin/federationAdmin.js';
import { createKeySet } from '../cli/federationKeys.js';
import { generateEncryptionKey } from '../shared/secure/ckks/siteEncryptionKey.js';
import { ephemeralAdminKey } from '../shared/secure/trust/adminKey.js';
import { siteKeysFingerprint } from '../shared/secure/trust/fingerprint.js';
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateIdentity } from '../shared/secure/identity.js';
import { median, round } from './stats.js';

export interface RoundBenchResult {
  security: string;
  secagg?: { neighbours?: number; threshold?: number };
  edges: number;
  edgeProcesses: number;
  parameters: number;
  roundsMeasured: number;
  /** configure -> aggregated version persisted, per warm-up round (ms; not in the medians). */
  warmupRoundMs: number[];
  /** configure -> aggregated version persisted, per measured round (ms). */
  roundMs: number[];
  medianRoundMs: number;
  /** Whole round including the bookkeeping after persisting (ms). */
  medianTotalMs: number;
  coordinatorPeakRssMB: number;
  bytesPerRound: number;
  /** Medians of the coordinator's phase timings (ms since the round started). */
  phases: Record<string, number>;
}

const here = fileURLToPath(new URL('.', import.meta.url));
const cli = join(here, '../cli/fedmed.js');

function waitForLine(child: ChildProcess, match: (line: string) => boolean, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}: ${buf}`)), 60_000);
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const line = buf.split('\n').find(match);
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    child.on('exit', (code) => reject(new Error(`${what}: process exited with ${code}: ${buf}`)));
  });
}

/**
 * `warmup` rounds (default 3) run first and are reported apart: the first rounds of a fresh
 * federation are slower (Linux grows each connection's TCP buffers as it sees traffic; V8 and
 * WebAssembly tier up hot code), and a federation runs for many rounds.
 */
export async function benchRound(o: { edges: number; hidden: number; features: number; rounds: number; warmup?: number; edgeProcesses: number; security?: 'plain' | 'secagg' | 'ckks'; secagg?: { neighbours?: number; threshold?: number } }): Promise<RoundBenchResult> {
  const warmup = o.warmup ?? 3;
  const dir = mkdtempSync(join(tmpdir(), 'fedmed-bench-round-'));
  // FEDMED_BENCH_COORDINATOR_FLAGS: extra node flags for the coordinator (e.g. --cpu-prof).
  const nodeFlags = process.env.FEDMED_BENCH_COORDINATOR_FLAGS?.split(' ').filter(Boolean) ?? [];
  const coord = spawn(process.execPath, [...nodeFlags, cli, 'coordinator', 'start', '--data-dir', join(dir, 'coord'), '--port', '0', '--log-level', 'error'], { stdio: ['ignore', 'pipe', 'inherit'] });
  // FEDMED_BENCH_COORDINATOR_LOG: also copy the coordinator's stdout there (e.g. with --trace-gc).
  if (process.env.FEDMED_BENCH_COORDINATOR_LOG) coord.stdout!.pipe(createWriteStream(process.env.FEDMED_BENCH_COORDINATOR_LOG, { flags: 'a' }));
  const edgeProcs: ChildProcess[] = [];
  try {
    const url = (JSON.parse(await waitForLine(coord, (l) => l.includes('"listening"'), 'the coordinator')) as { url: string }).url;
    const token = readFileSync(join(dir, 'coord', 'admin.token'), 'utf8').trim();
    const post = async <T>(path: string, body: unknown, auth = true): Promise<T> => {
      const res = await fetch(new URL(path, url), { method: 'POST', headers: { 'content-type': 'application/json', ...(auth ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
      if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
      return (await res.json()) as T;
    };
    const get = async <T>(path: string): Promise<T> => (await (await fetch(new URL(path, url), { headers: { authorization: `Bearer ${token}` } })).json()) as T;
    // The federation admin's steps (an admin key that lives only in this run): certify the
    // coordinator, then per site a join token, enrolment and the certificate of its keys.
    const admin = ephemeralAdminKey();
    const adminApi = new ApiAdminTarget({ url, token });
    await certifyCoordinator(adminApi, admin);
    const state: { site: string; privateKeyPem: string; encryptionKeyPem: string; adminPublicKey: string }[] = [];
    for (let i = 0; i < o.edges; i++) {
      const site = `bench-${i}`;
      const { token: join_ } = await addSite(adminApi, site, admin);
      const id = generateIdentity();
      const enc = generateEncryptionKey();
      await post('/v1/enroll', { token: join_.split('.')[0], publicKey: id.publicKeyB64, encryptionKey: enc.publicB64 }, false);
      await certifySite(adminApi, admin, site, { fingerprint: siteKeysFingerprint(id.publicKeyB64, enc.publicB64) });
      const pem = (k: KeyObject) => k.export({ format: 'pem', type: 'pkcs8' }) as string;
      state.push({ site, privateKeyPem: pem(id.privateKey), encryptionKeyPem: pem(enc.privateKey), adminPublicKey: admin.publicKeyB64 });
    }
    // The simulated edges run in `edgeProcesses` processes (each serving a share of the sites).
    for (let p = 0; p < o.edgeProcesses; p++) {
      const file = join(dir, `edges-${p}.json`);
      writeFileSync(file, JSON.stringify(state.filter((_, i) => i % o.edgeProcesses === p)));
      const child = spawn(process.execPath, [join(here, 'fixedUpdateEdges.js'), url, file], { stdio: ['ignore', 'pipe', 'inherit'] });
      edgeProcs.push(child);
      await waitForLine(child, (l) => l === 'ready', 'the edges');
    }
    // The admin's CKKS key set, wrapped to every site's certified encryption key.
    if (o.security === 'ckks') await createKeySet({ url, token }, admin, join(dir, 'ckks-secret-key.json'));
    const exp = await post<{ id: string; parameters: number }>('/v1/experiments', {
      name: 'bench-round',
      model: { zoo: 'mlp-tabular', numFeatures: o.features, hidden: [o.hidden], numClasses: 2 },
      minFitClients: o.edges,
      fractionEvaluate: 0,
      minEvaluateClients: 0,
      deadlineSeconds: 60,
      security: o.security ?? 'plain',
      ...(o.secagg ? { secagg: o.secagg } : {}),
    });
    await post(`/v1/experiments/${exp.id}/rounds`, { rounds: warmup + o.rounds });
    type Rec = { status: string; reason: string | null; timings: Record<string, number>; security?: Record<string, number>; bytesSent: number; bytesReceived: number };
    let recs: Rec[] = [];
    for (;;) {
      const e = await get<{ running: boolean }>(`/v1/experiments/${exp.id}`);
      recs = await get<Rec[]>(`/v1/experiments/${exp.id}/rounds`);
      if (!e.running) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const bad = recs.find((r) => r.status !== 'completed');
    if (bad) throw new Error(`a benchmark round did not complete: ${bad.reason}`);
    const measured = recs.slice(warmup);
    for (const r of measured) for (const k of ['secaggKeysMs', 'secaggSharesMs', 'secaggConsistencyMs', 'secaggUnmaskMs', 'ckksAddMs']) if (r.security?.[k] !== undefined) r.timings[k] = r.security[k];
    const status = readFileSync(`/proc/${coord.pid}/status`, 'utf8');
    const hwmKb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN);
    return {
      security: o.security ?? 'plain',
      ...(o.secagg ? { secagg: o.secagg } : {}),
      edges: o.edges,
      edgeProcesses: o.edgeProcesses,
      parameters: exp.parameters,
      roundsMeasured: measured.length,
      warmupRoundMs: recs.slice(0, warmup).map((r) => round(r.timings.persistedMs, 1)),
      roundMs: measured.map((r) => round(r.timings.persistedMs, 1)),
      medianRoundMs: round(median(measured.map((r) => r.timings.persistedMs)), 1),
      medianTotalMs: round(median(measured.map((r) => r.timings.totalMs)), 1),
      coordinatorPeakRssMB: round(hwmKb / 1024, 1),
      bytesPerRound: measured[0]?.bytesSent + measured[0]?.bytesReceived,
      phases: Object.fromEntries(['configureMs', 'secaggKeysMs', 'secaggSharesMs', 'fitSendMs', 'fitCollectMs', 'fitMs', 'secaggConsistencyMs', 'secaggUnmaskMs', 'ckksAddMs', 'aggregateMs', 'persistedMs', 'coordinatorCpuMs'].filter((k) => measured[0]?.timings[k] !== undefined).map((k) => [k, round(median(measured.map((r) => r.timings[k])), 1)])),
    };
  } finally {
    for (const e of edgeProcs) e.kill('SIGTERM');
    coord.kill('SIGTERM');
    await new Promise((r) => coord.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `runs` separate federations (fresh processes each) of benchRound; the median of their medians. */
export async function benchRoundRuns(runs: number, o: Parameters<typeof benchRound>[0]): Promise<{ runs: RoundBenchResult[]; medianRoundMs: number; maxCoordinatorPeakRssMB: number }> {
  const results: RoundBenchResult[] = [];
  for (let i = 0; i < runs; i++) results.push(await benchRound(o));
  return { runs: results, medianRoundMs: median(results.map((r) => r.medianRoundMs)), maxCoordinatorPeakRssMB: Math.max(...results.map((r) => r.coordinatorPeakRssMB)) };
}
