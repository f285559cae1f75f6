/**
 * Child process of the raw-transfer-floor benchmark (rawTransferFloor.ts): a share of the
 * simulated edges, as raw WebSocket connections that only count bytes and answer (no frames,
 * no hashing, no masking maths), so the floor is the transfer alone.
 *   node dist/bench/rawFloorClients.js CONFIG_JSON PORT COUNT   (started with an IPC channel)
 * Opens COUNT connections to the server on 127.0.0.1:PORT and sends "ready" once all are open.
 * Per round and connection: answers each of the keyPhases small messages with a small one, then,
 * once the whole model (4·d bytes) has arrived, sends the update (4·(d+1) bytes) back.
 */
import WebSocket from 'ws';
import type { RawFloorConfig } from './rawTransferFloor.js';

const cfg = JSON.parse(process.argv[2]) as RawFloorConfig;
const port = Number(process.argv[3]);
const count = Number(process.argv[4]);
const modelBytes = 4 * cfg.parameters;
// Allocated once and sent by every connection, like fixedUpdateEdges' shared fit_res frames.
const update = Buffer.alloc(4 * (cfg.parameters + 1), 3);
const small = Buffer.alloc(cfg.smallBytes, 4);

function fail(why: string): never {
  process.stderr.write(`rawFloorClients: ${why}\n`);
  process.exit(1);
}

let open = 0;
for (let i = 0; i < count; i++) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { maxPayload: cfg.maxPayload, perMessageDeflate: false });
  // The server's messages come in a fixed order, so counting them is enough to know the phase.
  let smallSeen = 0;
  let modelLeft = modelBytes;
  ws.on('open', () => {
    if (++open === count) process.send!('ready');
  });
  ws.on('message', (data: Buffer) => {
    if (smallSeen < cfg.keyPhases) {
      smallSeen++;
      ws.send(small);
      return;
    }
    modelLeft -= data.length;
    if (modelLeft > 0) return;
    for (let at = 0; at < update.length; at += cfg.chunkBytes) ws.send(update.subarray(at, Math.min(at + cfg.chunkBytes, update.length)));
    smallSeen = 0;
    modelLeft = modelBytes;
  });
  ws.on('close', () => fail('a connection closed'));
  ws.on('error', (err) => fail(err.message));
}
// The parent gone (ended or crashed): do not linger.
process.on('disconnect', () => process.exit(0));
