/**
 * TrainingBackend selection for TensorFlow.js.
 *
 * Order: tensorflow-gpu (@tensorflow/tfjs-node-gpu) > tensorflow (@tensorflow/tfjs-node) >
 * wasm (@tensorflow/tfjs-backend-wasm, with fedmed's extra kernels) > cpu (pure JS), or only the
 * one configured. The two native packages are optional dependencies: their install downloads
 * libtensorflow and fails offline, in which case they are simply absent. Every backend that
 * could not be used is reported with its reason; the one that runs is always reported.
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError, errorMessage } from '../../shared/errors.js';
export { parseTrainingBackend } from './trainingBackendNames.js';
import { registerOnnxruntimeConvKernels } from './onnxruntimeConvKernels.js';
import { registerWasmTrainingKernels } from './wasmKernels.js';

import { TRAINING_BACKENDS, type TrainingBackendName } from './trainingBackendNames.js';

export { TRAINING_BACKENDS, type TrainingBackendName } from './trainingBackendNames.js';

export interface BackendAttempt {
  backend: TrainingBackendName;
  ok: boolean;
  reason?: string;
}

export interface TrainingBackendInfo {
  /** The backend tfjs now runs on. */
  name: TrainingBackendName;
  /** tfjs' own name for it ("tensorflow", "wasm", "cpu"). */
  tfjsName: string;
  attempts: BackendAttempt[];
  /**
   * What runs the convolutions: "onnxruntime-cpu (N threads)" when the wasm backend's conv
   * kernels are routed to onnxruntime's native MLAS, "xnnpack-wasm" otherwise (with the reason
   * in `kernelsNote`), or the backend's own kernels.
   */
  convKernels: string;
  kernelsNote?: string;
}

export interface TrainingBackendOptions {
  /** Receives one line per skipped backend. Default console.warn. */
  log?: (message: string) => void;
  /**
   * Threads for the native convolution kernels of the wasm backend (default 1, or the
   * FEDMED_TRAINING_THREADS environment variable). tfjs' own wasm kernels are single-threaded in Node.
   */
  threads?: number;
}

/** The backend tfjs runs on now, and the outcome of each selection (default search or by name). */
let active: TrainingBackendInfo | null = null;
const selections = new Map<TrainingBackendName | 'default', TrainingBackendInfo>();

// Production mode: skips tfjs' debug checks and its "install tfjs-node" console banner (we report
// the backend ourselves).
tf.env().set('PROD', true);

/**
 * Makes tfjs run on the preferred backend, or the first of the default order that loads.
 * A selection is made once per process and reused. Throws BackendError when an explicitly
 * requested backend cannot load (never silently trains somewhere else than asked).
 */
export async function initTrainingBackend(preferred?: TrainingBackendName, options: TrainingBackendOptions = {}): Promise<TrainingBackendInfo> {
  const log = options.log ?? ((m: string) => console.warn(m));
  const threads = options.threads ?? defaultThreads();
  const known = selections.get(preferred ?? 'default');
  if (known) {
    if (tf.getBackend() !== known.tfjsName) await tf.setBackend(known.tfjsName);
    active = known;
    return known;
  }
  const order: TrainingBackendName[] = preferred ? [preferred] : [...TRAINING_BACKENDS];
  const attempts: BackendAttempt[] = [];
  for (const name of order) {
    try {
      const tfjsName = await loadBackend(name);
      let convKernels = name === 'cpu' ? 'tfjs-cpu (pure JS)' : name === 'wasm' ? 'xnnpack-wasm' : 'libtensorflow';
      let kernelsNote: string | undefined;
      if (name === 'wasm') {
        try {
          registerOnnxruntimeConvKernels({ threads });
          convKernels = `onnxruntime-cpu (${threads} thread${threads === 1 ? '' : 's'})`;
        } catch (err) {
          kernelsNote = `onnxruntime conv kernels unavailable, using XNNPACK: ${errorMessage(err).split('\n')[0]}`;
          log(`training: ${kernelsNote}`);
        }
      }
      const ok = await tf.setBackend(tfjsName);
      if (!ok) throw new Error(`tfjs could not initialise backend "${tfjsName}"`);
      await tf.ready();
      attempts.push({ backend: name, ok: true });
      active = { name, tfjsName, attempts, convKernels, kernelsNote };
      selections.set(preferred ?? 'default', active);
      return active;
    } catch (err) {
      const reason = describeLoadFailure(err);
      attempts.push({ backend: name, ok: false, reason });
      if (!preferred) log(`training: backend "${name}" unavailable, trying the next one: ${reason}`);
    }
  }
  throw new BackendError(
    preferred
      ? `training backend "${preferred}" is not available: ${attempts[0].reason}`
      : `no tfjs backend could be loaded: ${attempts.map((a) => `${a.backend}: ${a.reason}`).join('; ')}`,
  );
}

function defaultThreads(): number {
  const env = Number(process.env.FEDMED_TRAINING_THREADS);
  return Number.isInteger(env) && env >= 1 ? env : 1;
}

function describeLoadFailure(err: unknown): string {
  const code = (err as NodeJS.ErrnoException)?.code;
  const pkg = /Cannot find (?:package|module) '([^']+)'/.exec(errorMessage(err))?.[1];
  if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && pkg) {
    return `package ${pkg} is not installed (optional: its install downloads libtensorflow, which needs internet)`;
  }
  return errorMessage(err).split('\n')[0];
}

/** Imports the package that provides a backend and returns tfjs' name for it. */
async function loadBackend(name: TrainingBackendName): Promise<string> {
  switch (name) {
    case 'tensorflow-gpu':
      await import(/* optional */ '@tensorflow/tfjs-node-gpu' as string);
      return 'tensorflow';
    case 'tensorflow':
      await import(/* optional */ '@tensorflow/tfjs-node' as string);
      return 'tensorflow';
    case 'wasm':
      await import('@tensorflow/tfjs-backend-wasm');
      registerWasmTrainingKernels();
      return 'wasm';
    case 'cpu':
      return 'cpu';
  }
}

/** The active backend, or null before initTrainingBackend(). */
export function activeTrainingBackend(): TrainingBackendInfo | null {
  return active;
}
