/**
 * The edge inference service under load on loopback: a child process serves cnn-28 (fastify +
 * dynamic batching + onnxruntime-node, cpu, 1 intra-op thread), autocannon in this process sends
 * single-image JSON requests (784 pixel values). Scenarios: batching off (max batch 1), batching
 * on, and batching on while the model is hot-swapped every `swapEveryMs`. Requests/s and
 * p50/p99 latency, median over repeats; non-2xx responses and errors are counted.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { SeededRng } from '../shared/random/seededRng.js';
import { median, round } from './stats.js';

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
  ];
  const out: Record<string, unknown> = { model: 'cnn-28 (2 classes)', requestBytes: body.length, connections: o.connections, durationSeconds: o.durationSeconds };
  for (const s of scenarios) {
    const runs = [];
    for (let i = 0; i < o.repeats; i++) runs.push(await runOnce(s, body, o));
    out[s.name] = {
      maxBatch: s.maxBatch,
      maxWaitMs: s.maxWaitMs,
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

async function runOnce(s: Scenario, body: string, o: InferServiceBenchOptions): Promise<{ requestsPerSecond: number; p50Ms: number; p99Ms: number; failed: number; swaps: number }> {
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const child = fork(CHILD, [String(port), String(s.maxBatch), String(s.maxWaitMs)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await message(child, 'ready');
  let swaps = 0;
  let timer: NodeJS.Timeout | null = null;
  try {
    const url = `http://127.0.0.1:${port}/v1/infer`;
    // Warm-up (connections, JIT, onnxruntime's first runs).
    await autocannon({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: o.connections, duration: 1 });
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
    const r = await autocannon({ url, method: 'POST', headers: { 'content-type': 'application/json' }, body, connections: o.connections, duration: o.durationSeconds });
    return { requestsPerSecond: r.requests.average, p50Ms: r.latency.p50, p99Ms: r.latency.p99, failed: r.non2xx + r.errors + r.timeouts, swaps };
  } finally {
    if (timer) clearTimeout(timer);
    child.disconnect();
    await new Promise((r) => child.once('exit', r));
  }
}

function message(child: ChildProcess, want: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const on = (m: unknown): void => {
      if (m !== want) return;
      child.off('message', on);
      resolve();
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`inference service child exited (${code}) before "${want}"`)));
  });
}
