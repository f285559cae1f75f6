/**
 * DecodePool: a few worker threads that decode and preprocess DICOM objects (decodeWorker.ts), so
 * a 1760x1760 JPEG 2000 never blocks the edge's event loop.
 *
 * - Each worker runs one request at a time; waiting requests sit in a bounded FIFO queue. When
 *   the queue is full, decodeAndPreprocess rejects at once with a DicomError: a burst of
 *   arrivals cannot grow memory without bound (the caller, e.g. the SCP, answers "busy").
 * - The input bytes are transferred to the worker (the caller's p10 is detached afterwards) when
 *   p10 spans its whole ArrayBuffer; a view into a larger or shared buffer (e.g. a pooled Node
 *   Buffer) is copied once instead, so no one else's memory is detached. The result's Float32Array
 *   is transferred back.
 * - Workers are unref'd while idle, so an idle pool never keeps the process alive; a busy worker
 *   is ref'd so its pending promise is honoured. A worker that crashes or exceeds `timeoutMs`
 *   is terminated (its request rejected) and replaced on the next request.
 * - close() rejects waiting and running requests and terminates the workers.
 * - On Linux each worker thread lowers its own scheduling priority (nice 19 by default), so
 *   decoding takes the CPU only when the event loop and inference do not need it.
 */
import { access } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DicomBusyError, DicomError } from '../../shared/errors.js';
import type { InputSpec } from '../../shared/model/inputSpec.js';
import type { DecodeReply, DecodeRequest, DecodeWorkerData } from './decodeWorker.js';
import { isSmallUncompressed } from './dicomDecoder.js';
import type { DecodedInstance } from './dicomTypes.js';
import { decodeAndPreprocess } from './preprocess.js';

export interface DecodePoolOptions {
  /** Worker threads (default min(2, available CPUs)). */
  size?: number;
  /** Requests that may wait for a free worker (default 32); beyond that, requests are refused. */
  maxQueue?: number;
  /** A request running longer is abandoned and its worker replaced (default 120 s). */
  timeoutMs?: number;
  /**
   * The workers' OS scheduling priority (nice value, -20..19; Linux, each worker thread only):
   * higher yields the CPU to the rest of the edge — inference — while a burst of large images
   * decodes (BENCHMARKS.md "DICOM at the edge": inference p99 during a JPEG 2000 burst). Default
   * 19 (lowest); 0 leaves them at the process's priority.
   */
  priority?: number;
  /**
   * An uncompressed object of at most this many bytes, and at most 1024 pixels each way, is
   * decoded on the calling thread (default 512 KiB; 0: always a worker). Its decode is a bounded copy and resize (~0.3 ms for a 256²
   * 16-bit image), cheaper than the thread hop (~1 ms); compressed or large objects, whose decode
   * costs up to seconds, always go to a worker.
   */
  inlineMaxBytes?: number;
}

export interface DecodeResult {
  decoded: Omit<DecodedInstance, 'pixels'>;
  /** NHWC [h, w, c] float32 in [0, 1] (preprocess.ts). */
  input: Float32Array;
}

interface Job {
  id: number;
  p10: Uint8Array;
  spec: InputSpec;
  resolve: (r: DecodeResult) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  job: Job | null;
  timer: NodeJS.Timeout | null;
}

const WORKER_URL = new URL('./decodeWorker.js', import.meta.url);
/** Inline decoding also needs rows and columns at most this (the resize's cost grows with them, not with the file). */
const INLINE_MAX_SIDE = 1024;

export class DecodePool {
  readonly size: number;
  readonly maxQueue: number;
  private readonly timeoutMs: number;
  private readonly priority: number;
  private readonly inlineMaxBytes: number;
  private readonly slots: (Slot | null)[];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;

  constructor(options: DecodePoolOptions = {}) {
    const size = options.size ?? Math.min(2, availableParallelism());
    const maxQueue = options.maxQueue ?? 32;
    const timeoutMs = options.timeoutMs ?? 120_000;
    const priority = options.priority ?? 19;
    if (!Number.isInteger(size) || size < 1) throw new DicomError(`decode pool size must be a positive integer, got ${size}`);
    if (!Number.isInteger(maxQueue) || maxQueue < 0) throw new DicomError(`decode pool maxQueue must be a non-negative integer, got ${maxQueue}`);
    if (!(timeoutMs > 0)) throw new DicomError(`decode pool timeoutMs must be positive, got ${timeoutMs}`);
    if (!Number.isInteger(priority) || priority < -20 || priority > 19) throw new DicomError(`decode pool priority must be an integer nice value in -20..19, got ${priority}`);
    this.size = size;
    this.maxQueue = maxQueue;
    this.timeoutMs = timeoutMs;
    this.priority = priority;
    this.inlineMaxBytes = options.inlineMaxBytes ?? 512 * 1024;
    this.slots = Array.from({ length: size }, () => null);
  }

  /** Requests waiting for a worker (not counting the running ones). */
  get queued(): number {
    return this.queue.length;
  }

  /** Requests running in a worker now. */
  get running(): number {
    return this.slots.filter((s) => s?.job).length;
  }

  /**
   * Decodes one DICOM object and preprocesses it for `spec` in a worker (small uncompressed ones: here). Rejects with a DicomError
   * when the object is invalid, a DicomBusyError when the queue is full or the pool is closed.
   * p10 may be detached.
   */
  decodeAndPreprocess(p10: Uint8Array, spec: InputSpec): Promise<DecodeResult> {
    if (this.closed) return Promise.reject(new DicomBusyError('decode pool is closed'));
    if (p10.byteLength <= this.inlineMaxBytes && isSmallUncompressed(p10, INLINE_MAX_SIDE)) {
      try {
        return Promise.resolve(decodeAndPreprocess(p10, spec));
      } catch (err) {
        return Promise.reject(err instanceof Error ? err : new DicomError(String(err)));
      }
    }
    const free = this.slots.findIndex((s) => !s?.job);
    if (free < 0 && this.queue.length >= this.maxQueue) {
      return Promise.reject(new DicomBusyError(`decode queue full: ${this.running} decoding, ${this.queue.length} waiting (maxQueue ${this.maxQueue}); try again later`));
    }
    return new Promise<DecodeResult>((resolve, reject) => {
      const job: Job = { id: this.nextId++, p10, spec, resolve, reject };
      if (free >= 0) this.run(free, job);
      else this.queue.push(job);
    });
  }

  /** Rejects waiting and running requests and terminates the workers. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new DicomBusyError('decode pool closed before the request finished');
    for (const job of this.queue.splice(0)) job.reject(err);
    const terminating: Promise<number>[] = [];
    for (let i = 0; i < this.slots.length; i++) {
      const slot = this.slots[i];
      if (!slot) continue;
      this.slots[i] = null;
      if (slot.timer) clearTimeout(slot.timer);
      slot.job?.reject(err);
      slot.job = null;
      slot.worker.removeAllListeners();
      slot.worker.on('error', () => {});
      terminating.push(slot.worker.terminate());
    }
    await Promise.all(terminating);
  }

  private spawn(index: number): Slot {
    // Threads inherit their creator's nice value, and libuv's thread pool (the whole process's fs,
    // crypto, zlib) starts on first use: start it here, from this thread, before a reniced worker can.
    if (this.priority !== 0) access(fileURLToPath(WORKER_URL), () => {});
    // Not the parent's --input-type (it only applies to --eval input and makes a worker fail).
    const worker = new Worker(WORKER_URL, { execArgv: process.execArgv.filter((a) => !a.startsWith('--input-type')), workerData: { priority: this.priority } satisfies DecodeWorkerData });
    const slot: Slot = { worker, job: null, timer: null };
    worker.unref();
    worker.on('message', (reply: DecodeReply) => this.onReply(index, slot, reply));
    worker.on('error', (err) => this.onCrash(index, slot, `decode worker failed: ${err.message}`));
    worker.on('exit', (code) => this.onCrash(index, slot, `decode worker exited (code ${code})`));
    this.slots[index] = slot;
    return slot;
  }

  private run(index: number, job: Job): void {
    const slot = this.slots[index] ?? this.spawn(index);
    slot.job = job;
    slot.worker.ref();
    slot.timer = setTimeout(() => this.onCrash(index, slot, `decode took longer than ${this.timeoutMs} ms`, true), this.timeoutMs);
    slot.timer.unref();
    const whole = job.p10.byteOffset === 0 && job.p10.byteLength === job.p10.buffer.byteLength && job.p10.buffer instanceof ArrayBuffer;
    let p10 = whole ? job.p10 : new Uint8Array(job.p10); // (a copy: a Buffer's slice() is a view)
    job.p10 = new Uint8Array(0); // the job no longer holds the bytes
    try {
      try {
        slot.worker.postMessage({ type: 'decode', id: job.id, p10, spec: job.spec } satisfies DecodeRequest, [p10.buffer as ArrayBuffer]);
      } catch (err) {
        // Some ArrayBuffers cannot be transferred (Node marks its Buffer pool's untransferable): copy once.
        if (!/unsupported type|untransferable/i.test((err as Error).message)) throw err;
        p10 = new Uint8Array(p10);
        slot.worker.postMessage({ type: 'decode', id: job.id, p10, spec: job.spec } satisfies DecodeRequest, [p10.buffer as ArrayBuffer]);
      }
    } catch (err) {
      this.finish(index, slot);
      job.reject(new DicomError(`cannot send the DICOM object to the decode worker: ${(err as Error).message}`, { cause: err }));
    }
  }

  private onReply(index: number, slot: Slot, reply: DecodeReply): void {
    const job = slot.job;
    if (!job || job.id !== reply.id) return;
    this.finish(index, slot);
    if (reply.type === 'done') job.resolve({ decoded: reply.decoded, input: reply.input });
    else job.reject(new DicomError(reply.dicom ? reply.message : `decode worker: ${reply.message}`));
  }

  /** A worker died, errored or timed out: reject its job, drop it (a new one is spawned on demand). */
  private onCrash(index: number, slot: Slot, message: string, terminate = false): void {
    if (this.slots[index] !== slot) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    this.slots[index] = null;
    const job = slot.job;
    slot.job = null;
    slot.worker.removeAllListeners();
    slot.worker.on('error', () => {});
    if (terminate) void slot.worker.terminate();
    job?.reject(new DicomError(message));
    this.dispatch(index);
  }

  private finish(index: number, slot: Slot): void {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = null;
    slot.job = null;
    slot.worker.unref();
    this.dispatch(index);
  }

  private dispatch(index: number): void {
    if (this.closed) return;
    const next = this.queue.shift();
    if (next) this.run(index, next);
  }
}
