/**
 * The edge inference service under load on loopback: a child process serves cnn-28 (fastify +
 * dynamic batching + onnxruntime-node, cpu, 1 intra-op thread), autocannon in this process sends
 * single-image JSON requests (784 pixel values). Scenarios: batching off (max batch 1), batching
 * on, and batching on while the model is hot-swapped every `swapEveryMs` — over plain HTTP
 * without authentication, and again over https (TLS 1.3, self-signed P-256 certificate made
 * here with openssl) with a clinician bearer token checked on every request. Requests/s and
 * p50/p99 latency, median over repeats; non-2xx responses and errors are counted.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SeededRng } from '../shared/random/seededRng.js';
import { median, round } from './stats.js';
import { createServiceToken } from '../edge-client/inference/serviceTokens.js';

export interface InferServiceBenchOptions {
  durationSeconds: number;
  connections: number;
  repeats: number;
  swapEveryMs: number;
}

interface Scenario {
  name: string;
  maxBatch: number;
  maxWaitMs: number;
  swaps: boolean;
  /** https + token auth. */
  secure?: boolean;
}

interface Security {
  stateDir: string;
  cert: string;
  key: string;
  token: string;
}

const CHILD = fileURLToPath(new URL('./inferServiceChild.js', import.meta.url));

export async function benchInferService(o: InferServiceBenchOptions): Promise<Record<string, unknown>> {
  const rng = new SeededRng(1);
  // Pixel values as a client would send them (k/255, 4 decimals).
  const body = JSON.stringify({ input: Array.from({ length: 784 }, () => Math.round((Math.floor(rng.next() * 256) / 255) * 1e4) / 1e4) });
  const scenarios: Scenario[] = [
    { name: 'noBatching', maxBatch: 1, maxWaitMs: 0, swaps: false },
    { name: 'dynamicBatching', maxBatch: 32, maxWaitMs: 1, swaps: false },
    { name: 'dynamicBatchingDuringSwaps', maxBatch: 32, maxWaitMs: 1, swaps: true },
    { name: 'tlsTokenDynamicBatching', maxBatch: 32, maxWaitMs: 1, swaps: false, secure: true },
    { name: 'tlsTokenDynamicBatchingDuringSwaps', maxBatch: 32, maxWaitMs: 1, swaps: true, secure: true },
  ];
  const dir = mkdtempSync(join(tmpdir(), 'fedmed-bench-infer-'));
  try {
    const pem = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', pem.key, '-out', pem.cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const security: Security = { stateDir: dir, ...pem, token: createServiceToken(dir, { role: 'clinician', name: 'bench' }).token };
    return await runScenarios(scenarios, body, o, security);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runScenarios(scenarios: Scenario[], body: string, o: InferServiceBenchOptions, security: Security): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = { model: 'cnn-28 (2 classes)', requestBytes: body.length, connections: o.connections, durationSeconds: o.durationSeconds, tls: 'https (TLS 1.3 negotiated), ECDSA P-256 self-signed, keep-alive', auth: 'Authorization: Bearer <clinician token>, SHA-256 + constant-time compare, token file stat per request' };
  for (const s of scenarios) {
    const runs = [];
    for (let i = 0; i < o.repeats; i++) runs.push(await runOnce(s, body, o, s.secure ? security : null));
    out[s.name] = {
      maxBatch: s.maxBatch,
      maxWaitMs: s.maxWaitMs,
      transport: s.secure ? 'https + token' : 'http, no auth',
      medianRequestsPerSecond: round(median(runs.map((r) => r.requestsPerSecond)), 0),
      medianP50Ms: median(runs.map((r) => r.p50Ms)),
      medianP99Ms: median(runs.map((r) => r.p99Ms)),
      failed: runs.reduce((a, r) => a + r.failed, 0),
      swaps: runs.reduce((a, r) => a + r.swaps, 0),
      runs,
    };
  }
  return out;
}

async function runOnce(s: Scenario, body: string, o: InferServiceBenchOptions, sec: Security | null): Promise<{ requestsPerSecond: number; p50Ms: number; p99Ms: number; failed: number; swaps: number }> {
  const child = fork(CHILD, ['0', String(s.maxBatch), String(s.maxWaitMs), ...(sec ? [sec.stateDir, sec.cert, sec.key] : [])], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const port = Number((await message(child, (m) => m.startsWith('ready:'))).slice(6));
  let swaps = 0;
  let timer: NodeJS.Timeout | null = null;
  try {
    const url = `${sec ? 'https' : 'http'}://127.0.0.1:${port}/v1/infer`;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(sec ? { authorization: `Bearer ${sec.token}` } : {}) };
    // Warm-up (connections, JIT, onnxruntime's first runs).
    await autocannon({ url, method: 'POST', headers, body, connections: o.connections, duration: 1 });
    if (s.swaps) {
      const swap = (): void => {
        child.send('swap');
        void message(child, 'swapped').then(() => {
          swaps++;
          timer = setTimeout(swap, o.swapEveryMs);
        });
      };
      timer = setTimeout(swap, o.swapEveryMs / 2);
    }
    const r = await autocannon({ url, method: 'POST', headers, body, connections: o.connections, duration: o.durationSeconds });
    return { requestsPerSecond: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, failed: r.non2xx + r.errors + r.timeouts, swaps };
  } finally {
    if (timer) clearTimeout(timer);
    child.disconnect();
    await new Promise((r) => child.once('exit', r));
  }
}

function message(child: ChildProcess, want: string | ((m: string) => boolean)): Promise<string> {
  return new Promise((resolve, reject) => {
    const on = (m: unknown): void => {
      if (typeof m !== 'string' || (typeof want === 'string' ? m !== want : !want(m))) return;
      child.off('message', on);
      resolve(m);
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`inference service child exited (${code}) before "${typeof want === 'string' ? want : 'ready'}"`)));
  });
}
