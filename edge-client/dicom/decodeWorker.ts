/**
 * Worker thread of the decode pool (decodePool.ts): decodes one DICOM object and preprocesses it
 * for an input spec, off the main thread. It loads the codecs' WebAssembly once, then serves one
 * request at a time. The input bytes arrive transferred and the Float32Array input goes back
 * transferred, so neither is copied on the way.
 */
import { parentPort } from 'node:worker_threads';
import { DicomError } from '../../shared/errors.js';
import type { InputSpec } from '../../shared/model/inputSpec.js';
import { decodeDicom, initDicomCodecs } from './dicomDecoder.js';
import type { DecodedInstance } from './dicomTypes.js';
import { preprocess } from './preprocess.js';

export type DecodeRequest = { type: 'decode'; id: number; p10: Uint8Array; spec: InputSpec };

export type DecodeReply =
  | { type: 'done'; id: number; decoded: Omit<DecodedInstance, 'pixels'>; input: Float32Array }
  | { type: 'error'; id: number; message: string; dicom: boolean };

const port = parentPort;
if (!port) throw new Error('decodeWorker.js must run in a worker thread');

let ready: Promise<void> | null = null;

port.on('message', async (req: DecodeRequest) => {
  try {
    ready ??= initDicomCodecs();
    await ready;
    const instance = decodeDicom(req.p10);
    const input = preprocess(instance, req.spec);
    const decoded: Omit<DecodedInstance, 'pixels'> = { uids: instance.uids, metadata: instance.metadata, rescale: instance.rescale, window: instance.window };
    port.postMessage({ type: 'done', id: req.id, decoded, input } satisfies DecodeReply, [input.buffer as ArrayBuffer]);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    port.postMessage({ type: 'error', id: req.id, message, dicom: err instanceof DicomError } satisfies DecodeReply);
  }
});
