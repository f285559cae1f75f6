/**
 * Data-parallel local training over worker threads, to use every core of an edge machine
 * (tfjs' wasm backend is single-threaded in Node). Synchronous SGD: each batch is split into one
 * shard per worker; workers compute their shard's gradient into shared memory; the main thread
 * sums them (each is pre-scaled by shard/batch size) and every worker applies that same
 * averaged gradient to its replica. The result equals single-thread training on the same
 * batches up to floating-point summation order (and dropout masks, which are random anyway).
 */
import { Worker } from 'node:worker_threads';
import { TfjsModel } from '../../models/tfjsModel.js';
import { BackendError } from '../../shared/errors.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import type { Dataset } from '../data/dataset.js';
import { runEpochs } from './epochLoop.js';
import type { GradientWorkerInit, WorkerReply, WorkerRequest } from './gradientWorker.js';
import { checkData, checkFitOptions, evaluateModel, fitResult, type LocalFitOptions, type LocalFitResult } from './localTrainer.js';
import type { BatchOutcome } from './trainingStep.js';
import type { TrainingBackendName } from './trainingBackend.js';

interface WorkerHandle {
  worker: Worker;
  grad: Float32Array;
  /** Resolves with the next reply of this worker. */
  next(): Promise<WorkerReply>;
  send(req: WorkerRequest): void;
}

export interface DataParallelOptions {
  workers: number;
  backend: TrainingBackendName;
}

/**
 * A pool of training workers that stays up between fits (an edge trains once per round; starting
 * a worker costs about a second of tfjs/wasm/onnxruntime initialisation).
 */
export class DataParallelTrainer {
  private handles: WorkerHandle[] = [];
  private busy = false;

  constructor(private readonly o: DataParallelOptions) {}

  async fit(spec: ModelSpec, globalParams: Float32Array, data: Dataset, options: LocalFitOptions): Promise<LocalFitResult> {
    checkFitOptions(options);
    checkData(spec, data);
    if (this.busy) throw new BackendError('this trainer is already running a fit');
    this.busy = true;
    try {
      return await this.run(spec, globalParams, data, options);
    } catch (err) {
      await this.close(); // a failed worker or protocol error: start fresh next time
      throw err;
    } finally {
      this.busy = false;
    }
  }

  async close(): Promise<void> {
    const handles = this.handles;
    this.handles = [];
    for (const h of handles) {
      h.send({ type: 'close' });
      await h.worker.terminate();
    }
  }

  private async run(spec: ModelSpec, globalParams: Float32Array, data: Dataset, options: LocalFitOptions): Promise<LocalFitResult> {
    const n = data.y.length;
    const layout = layoutOf(spec);
    const sab = (values: number): SharedArrayBuffer => new SharedArrayBuffer(values * 4);
    const xBuf = sab(data.x.length);
    new Float32Array(xBuf).set(data.x);
    const yBuf = sab(n);
    new Int32Array(yBuf).set(data.y);
    // Two averaged-gradient buffers, alternating by step: workers apply step t-1's buffer while
    // the main thread will write step t's into the other one (no race, no extra round trip).
    const avgBufs = [sab(layout.size), sab(layout.size)];
    const avgs = avgBufs.map((b) => new Float32Array(b));
    const outBuf = sab(layout.size);
    const out = new Float32Array(outBuf);
    const maxShard = Math.ceil(options.batchSize / this.o.workers);
    while (this.handles.length < this.o.workers) this.handles.push(spawn());
    const handles = this.handles;
    handles.forEach((h, w) => {
      const gradBuf = sab(layout.size);
      h.grad = new Float32Array(gradBuf);
      const init: GradientWorkerInit = {
        spec,
        params: globalParams,
        backend: this.o.backend,
        x: xBuf,
        y: yBuf,
        exampleShape: data.exampleShape,
        step: { optimizer: options.optimizer, learningRate: options.learningRate, proxMu: options.proxMu },
        grad: gradBuf,
        avg: avgBufs,
        out: outBuf,
        maxShard,
        augment: options.augment,
        augmentSeed: (options.seed ?? 0) * 1000 + w + 1,
      };
      h.send({ type: 'init', init });
    });
    for (const h of handles) await expect(h, 'ready');

    const evalModel = options.validation ? new TfjsModel(spec, globalParams) : null;
    let pendingApply = false;
    let stepIndex = 0;
    const lastAvg = (): number => (stepIndex - 1) & 1;
    /** Makes every replica apply the last averaged gradient, if it has not yet. */
    const flush = async (): Promise<void> => {
      if (!pendingApply) return;
      for (const h of handles) h.send({ type: 'apply', avg: lastAvg() });
      for (const h of handles) await expect(h, 'applied');
      pendingApply = false;
    };
    const fetchParams = async (into?: Float32Array): Promise<Float32Array> => {
      await flush();
      handles[0].send({ type: 'params' });
      await expect(handles[0], 'params');
      const copy = into ?? new Float32Array(out.length);
      copy.set(out);
      return copy;
    };
    const runBatch = async (indices: Int32Array): Promise<BatchOutcome> => {
      const b = indices.length;
      const shard = Math.ceil(b / handles.length);
      handles.forEach((h, w) => {
        h.send({ type: 'step', indices: indices.slice(Math.min(w * shard, b), Math.min((w + 1) * shard, b)), batchSize: b, applyAvg: pendingApply ? lastAvg() : -1 });
      });
      const avg = avgs[stepIndex & 1];
      avg.fill(0);
      let lossSum = 0;
      let correct = 0;
      for (const h of handles) {
        const r = await expect(h, 'grads');
        if (r.type !== 'grads') continue;
        lossSum += r.loss * r.count;
        correct += r.correct;
        const g = h.grad;
        for (let i = 0; i < g.length; i++) avg[i] += g[i];
      }
      pendingApply = true;
      stepIndex++;
      return { loss: lossSum / b, correct };
    };
    try {
      const validation = options.validation;
      const loop = await runEpochs(n, options, {
        runBatch,
        evaluate: evalModel && validation ? async () => {
          evalModel.setParams(await fetchParams());
          return evaluateModel(evalModel, validation);
        } : undefined,
        snapshot: (reuse) => fetchParams(reuse),
      });
      const params = loop.selected?.params ?? (await fetchParams());
      return fitResult(loop, params, n, options, this.o.backend, handles.length);
    } finally {
      evalModel?.dispose();
    }
  }
}

/** One fit on a fresh pool that is closed afterwards. */
export async function dataParallelFit(
  spec: ModelSpec,
  globalParams: Float32Array,
  data: Dataset,
  options: LocalFitOptions & DataParallelOptions,
): Promise<LocalFitResult> {
  const trainer = new DataParallelTrainer(options);
  try {
    return await trainer.fit(spec, globalParams, data, options);
  } finally {
    await trainer.close();
  }
}

function spawn(): WorkerHandle {
  const worker = new Worker(new URL('./gradientWorker.js', import.meta.url));
  const queue: WorkerReply[] = [];
  const waiters: ((r: WorkerReply) => void)[] = [];
  const deliver = (r: WorkerReply): void => {
    const w = waiters.shift();
    if (w) w(r);
    else queue.push(r);
  };
  worker.on('message', deliver);
  worker.on('error', (err) => deliver({ type: 'error', message: err.message }));
  worker.on('exit', (code) => {
    if (code !== 0) deliver({ type: 'error', message: `training worker exited with code ${code}` });
  });
  return {
    worker,
    grad: new Float32Array(0),
    next: () => new Promise((resolve) => (queue.length ? resolve(queue.shift()!) : waiters.push(resolve))),
    send: (req) => worker.postMessage(req),
  };
}

async function expect(h: WorkerHandle, type: WorkerReply['type']): Promise<WorkerReply> {
  const r = await h.next();
  if (r.type === 'error') throw new BackendError(`training worker failed: ${r.message}`);
  if (r.type !== type) throw new BackendError(`training worker protocol error: expected "${type}", got "${r.type}"`);
  return r;
}
