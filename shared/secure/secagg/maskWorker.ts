/** Worker side of parallelMasks.ts: masks one slice of a shared vector. */
import { parentPort } from 'node:worker_threads';
import { applyMasks, type Mask } from './maskStream.js';

parentPort!.on('message', (m: { job: number; buffer: SharedArrayBuffer; byteOffset: number; length: number; offset: number; masks: Mask[] }) => {
  try {
    applyMasks(new Uint32Array(m.buffer, m.byteOffset, m.length), m.masks.map((x) => ({ key: new Uint8Array(x.key), sign: x.sign })), m.offset);
    parentPort!.postMessage({ job: m.job });
  } catch (err) {
    parentPort!.postMessage({ job: m.job, error: (err as Error).message });
  }
});
