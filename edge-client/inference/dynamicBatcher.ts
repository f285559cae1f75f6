/**
 * Dynamic batching: single-example requests are queued and run together, so onnxruntime's
 * per-call overhead is paid once per batch. A batch starts when `maxBatch` requests wait, when
 * the oldest has waited `maxWaitMs`, or at once when nothing is running (no latency is added
 * to a lone request); at most `maxConcurrent` batches run at a time. Each request learns the
 * version that produced its answer (a batch runs on one model, even across a swap).
 */
import type { HotSwapModel, ServingModel } from './hotSwapModel.js';

export interface BatchingOptions {
  /** Largest batch (1 = no batching). */
  maxBatch: number;
  /** Longest a request waits for others to join its batch, in ms. */
  maxWaitMs: number;
  /** Batches running at once. */
  maxConcurrent: number;
  /** Requests allowed to wait; beyond this they are refused (HTTP 503), not queued forever. */
  maxQueue: number;
}

export const DEFAULT_BATCHING: BatchingOptions = { maxBatch: 32, maxWaitMs: 2, maxConcurrent: 2, maxQueue: 4096 };

export interface InferenceAnswer {
  probabilities: Float32Array;
  model: ServingModel;
  batchSize: number;
}

interface Pending {
  input: Float32Array;
  resolve: (a: InferenceAnswer) => void;
  reject: (e: Error) => void;
}

export class QueueFullError extends Error {}

/** The serving model's input shape changed between a request's arrival and its batch. */
export class ModelChangedError extends Error {}

export class DynamicBatcher {
  private queue: Pending[] = [];
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  onBatch: (size: number) => void = () => {};

  constructor(
    private readonly model: HotSwapModel,
    private readonly o: BatchingOptions = DEFAULT_BATCHING,
  ) {}

  /** Queues one example (its values, length = the model's example size). */
  infer(input: Float32Array): Promise<InferenceAnswer> {
    if (this.queue.length >= this.o.maxQueue) return Promise.reject(new QueueFullError(`inference queue is full (${this.o.maxQueue} requests waiting)`));
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  get queued(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.running >= this.o.maxConcurrent || this.queue.length === 0) return;
    if (this.queue.length >= this.o.maxBatch || this.running === 0 || this.o.maxWaitMs <= 0) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = null;
      this.runBatch();
      return;
    }
    this.timer ??= setTimeout(() => {
      this.timer = null;
      if (this.running < this.o.maxConcurrent) this.runBatch();
    }, this.o.maxWaitMs);
  }

  private runBatch(): void {
    const batch = this.queue.splice(0, this.o.maxBatch);
    if (batch.length === 0) return;
    this.running++;
    this.onBatch(batch.length);
    void this.execute(batch).finally(() => {
      this.running--;
      this.schedule();
    });
    this.schedule();
  }

  private async execute(all: Pending[]): Promise<void> {
    // A swap to a model with another input shape while these waited: those cannot run on it.
    const size = this.model.current?.exampleSize ?? all[0].input.length;
    const batch = all.filter((p) => p.input.length === size);
    for (const p of all) if (p.input.length !== size) p.reject(new ModelChangedError('the model changed to one with a different input shape while this request waited; send it again'));
    if (batch.length === 0) return;
    try {
      const input = new Float32Array(size * batch.length);
      batch.forEach((p, i) => input.set(p.input, i * size));
      const out = await this.model.run(input, batch.length);
      batch.forEach((p, i) => p.resolve({ probabilities: out.probabilities.slice(i * out.classes, (i + 1) * out.classes), model: out.model, batchSize: batch.length }));
    } catch (err) {
      for (const p of batch) p.reject(err as Error);
    }
  }
}
