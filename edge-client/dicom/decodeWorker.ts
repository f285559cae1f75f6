/**
 * Worker thread of the decode pool (decodePool.ts): decodes one DICOM object and preprocesses it
 * for an input spec, off the main thread. It loads the codecs' WebAssembly once, then serves one
 * request at a time. The input bytes arrive transferred and the Float32Array input goes back
 * transferred, so neither is copied on the way.
 */
import { realpathSync } from 'node:fs';
import { setPriority } from 'node:os';
import { basename } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { DicomError } from '../../shared/errors.js';
import type { InputSpec } from '../../shared/model/inputSpec.js';
import { initDicomCodecs } from './dicomDecoder.js';
import type { DecodedInstance } from './dicomTypes.js';
import { decodeAndPreprocess } from './preprocess.js';

export interface DecodeWorkerData {
  /** This thread's nice value (0: left as it is). */
  priority: number;
}

export type DecodeRequest = { type: 'decode'; id: number; p10: Uint8Array; spec: InputSpec };

export type DecodeReply =
  | { type: 'done'; id: number; decoded: Omit<DecodedInstance, 'pixels'>; input: Float32Array }
  | { type: 'error'; id: number; message: string; dicom: boolean };

const port = parentPort;
if (!port) throw new Error('decodeWorker.js must run in a worker thread');

// Linux schedules threads: setpriority(PRIO_PROCESS, tid) renices this worker thread only (raising
// the nice value needs no privilege). Elsewhere, or if the kernel refuses, the worker runs as it is.
const priority = (workerData as DecodeWorkerData | undefined)?.priority ?? 0;
if (priority !== 0 && process.platform === 'linux') {
  try {
    setPriority(Number(basename(realpathSync('/proc/thread-self'))), priority);
  } catch {
    /* not renicable here: decode at the process's priority */
  }
}

let ready: Promise<void> | null = null;

port.on('message', async (req: DecodeRequest) => {
  try {
    ready ??= initDicomCodecs();
    await ready;
    const { decoded, input } = decodeAndPreprocess(req.p10, req.spec);
    port.postMessage({ type: 'done', id: req.id, decoded, input } satisfies DecodeReply, [input.buffer as ArrayBuffer]);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    port.postMessage({ type: 'error', id: req.id, message, dicom: err instanceof DicomError } satisfies DecodeReply);
  }
});
