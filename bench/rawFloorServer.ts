/**
 * Child process of the raw-transfer-floor benchmark (rawTransferFloor.ts): the coordinator's
 * stand-in. Moves a SecAgg+ round's bytes over plain WebSockets with none of fedmed's logic, so
 * the round benchmark can be read against the cost of the transfer alone.
 *   node dist/bench/rawFloorServer.js CONFIG_JSON   (a RawFloorConfig; started with an IPC channel)
 * Listens on 127.0.0.1 (a free port) and sends { port }; on { run: R } runs R rounds once all
 * connections are open and sends { roundMs } (one time per round, measured here as fedmed's
 * coordinator measures its rounds).
 */
import { performance } from 'node:perf_hooks';
import { WebSocketServer, type WebSocket } from 'ws';
import type { RawFloorConfig } from './rawTransferFloor.js';

const cfg = JSON.parse(process.argv[2]) as RawFloorConfig;
const modelBytes = 4 * cfg.parameters;
const updateBytes = 4 * (cfg.parameters + 1);
// One model buffer sent to every connection (the coordinator also encodes its broadcast once).
const model = Buffer.alloc(modelBytes, 1);
const small = Buffer.alloc(cfg.smallBytes, 2);

/** A connection and the bytes it still owes for the reply being awaited. */
interface Peer {
  ws: WebSocket;
  left: number;
  done: () => void;
}
const peers: Peer[] = [];
let running = false;
let allConnected: () => void = () => {};
const connected = new Promise<void>((resolve) => (allConnected = resolve));

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: cfg.maxPayload, perMessageDeflate: false });
wss.on('listening', () => {
  const address = wss.address();
  if (address === null || typeof address === 'string') throw new Error(`unexpected server address ${String(address)}`);
  process.send!({ port: address.port });
});
wss.on('connection', (ws) => {
  const peer: Peer = { ws, left: 0, done: () => {} };
  peers.push(peer);
  // Only bytes are counted: no parsing, no hashing, no reassembly.
  ws.on('message', (data: Buffer) => {
    peer.left -= data.length;
    if (peer.left <= 0) peer.done();
  });
  // A connection lost mid-run would make every later number meaningless (after the run, the
  // parent ending the clients is no error).
  ws.on('close', () => running && fail('a client connection closed'));
  ws.on('error', (err) => fail(err.message));
  if (peers.length === cfg.connections) allConnected();
});

function fail(why: string): never {
  process.stderr.write(`rawFloorServer: ${why}\n`);
  process.exit(1);
}

/** Resolves once `bytes` have arrived from the peer (armed before the message that asks for them). */
function expect(peer: Peer, bytes: number): Promise<void> {
  peer.left = bytes;
  return new Promise((resolve) => (peer.done = resolve));
}

/** Sends `data` as messages of at most chunkBytes (a payload within one chunk is one message, as in fedmed). */
function sendChunked(ws: WebSocket, data: Buffer): void {
  for (let at = 0; at < data.length; at += cfg.chunkBytes) ws.send(data.subarray(at, Math.min(at + cfg.chunkBytes, data.length)));
}

async function runRound(): Promise<number> {
  const start = performance.now();
  // The key phases: each is a barrier over all connections, as the coordinator's SecAgg+
  // phases are (it waits for every edge's message before the next phase).
  for (let k = 0; k < cfg.keyPhases; k++) {
    await Promise.all(
      peers.map((p) => {
        const reply = expect(p, cfg.smallBytes);
        p.ws.send(small);
        return reply;
      }),
    );
  }
  await Promise.all(
    peers.map((p) => {
      const reply = expect(p, updateBytes);
      sendChunked(p.ws, model);
      return reply;
    }),
  );
  return performance.now() - start;
}

process.on('message', (m: { run?: number }) => {
  if (typeof m.run !== 'number') return;
  const rounds = m.run;
  void (async () => {
    await connected;
    running = true;
    const roundMs: number[] = [];
    for (let r = 0; r < rounds; r++) roundMs.push(await runRound());
    running = false;
    process.send!({ roundMs });
  })();
});
// The parent gone (ended or crashed): do not linger.
process.on('disconnect', () => process.exit(0));
