/**
 * Applies many masks to one vector on two threads: a worker masks the upper half of the vector
 * (seeking the AES-CTR keystreams to that offset) while this thread masks the lower half. The
 * vector must live in a SharedArrayBuffer. Used by the coordinator to unmask, its heaviest step
 * (with 100 sites and 10% dropout: ~270 keystreams of 1M words). The worker is started on first
 * use and kept (unref'd between jobs), since starting one costs tens of milliseconds.
 */
import { Worker } from 'node:worker_threads';
import { applyMasks, type Mask } from './maskStream.js';

/** Below this many words × masks, one thread is faster than the hand-off. */
const PARALLEL_MIN_WORK = 2_000_000;

let worker: Worker | null = null;
let nextJob = 1;
const pending = new Map<number, { resolve: () => void; reject: (err: Error) => void }>();

function maskWorker(): Worker {
  if (worker) return worker;
  const w = new Worker(new URL('./maskWorker.js', import.meta.url));
  w.on('message', (m: { job: number; error?: string }) => {
    const p = pending.get(m.job);
    pending.delete(m.job);
    if (m.error) p?.reject(new Error(`mask worker: ${m.error}`));
    else p?.resolve();
  });
  w.on('error', (err) => {
    for (const p of pending.values()) p.reject(err);
    pending.clear();
    worker = null;
  });
  worker = w;
  return w;
}

export async function applyMasksParallel(acc: Uint32Array, masks: readonly Mask[]): Promise<void> {
  if (!(acc.buffer instanceof SharedArrayBuffer) || acc.length * masks.length < PARALLEL_MIN_WORK) return applyMasks(acc, masks);
  const half = Math.floor(acc.length / 8) * 4; // split at a multiple of 4 words
  const job = nextJob++;
  const done = new Promise<void>((resolve, reject) => pending.set(job, { resolve, reject }));
  const w = maskWorker();
  w.ref(); // keep the process alive while a job is out; idle, the worker must not
  w.postMessage({ job, buffer: acc.buffer, byteOffset: acc.byteOffset + half * 4, length: acc.length - half, offset: half, masks: masks.map((m) => ({ key: Buffer.from(m.key), sign: m.sign })) });
  try {
    applyMasks(acc.subarray(0, half), masks);
    await done;
  } finally {
    if (pending.size === 0) w.unref();
  }
}
