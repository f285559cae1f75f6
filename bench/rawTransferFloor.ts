/**
 * The raw transfer floor of the SecAgg+ socket round benchmark (roundBenchmark.ts): the same
 * bytes between the same process layout (one server process; N connections over P client
 * processes; loopback) over plain WebSockets (`ws`, no compression, fedmed's maxPayload), with
 * none of fedmed's logic: no message validation, no hashing, no crypto, no aggregation.
 * A round: keyPhases small round trips (barriers over all connections, standing in for the
 * SecAgg+ key phases), then the model (4·d bytes) to every connection and the update
 * (4·(d+1) bytes) back, both in chunkBytes messages; it ends when the server has every update.
 * The gap between this and benchRound's SecAgg+ round is what fedmed's own work costs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_CHANNEL_LIMITS } from '../shared/protocol/messageChannel.js';
import { median, round } from './stats.js';

/** What the child processes are started with (one JSON argument). */
export interface RawFloorConfig {
  connections: number;
  parameters: number;
  chunkBytes: number;
  /** Bytes of each small key-phase message (about a JSON header carrying a key and a signature). */
  smallBytes: number;
  keyPhases: number;
  maxPayload: number;
}

export interface RawFloorResult {
  connections: number;
  processes: number;
  parameters: number;
  /** Message bytes both ways per round (WebSocket framing not counted, as fedmed's bytesSent/Received). */
  bytesPerRound: number;
  /** Per warm-up round (ms; not in the median). */
  warmupRoundMs: number[];
  roundMs: number[];
  medianRoundMs: number;
}

const here = fileURLToPath(new URL('.', import.meta.url));
/** The SecAgg+ round's small round trips before the masked update (stand-ins for its key phases). */
/** SecAgg+'s small round trips: keys → roster, shares → relay, survivor set → signature, unmask request → shares. */
const KEY_PHASES = 4;
const SMALL_BYTES = 256;
// The limit fedmed's edge gateway and edges set (edgeGateway.ts, fixedUpdateEdges.ts).
const MAX_PAYLOAD = DEFAULT_CHANNEL_LIMITS.maxHeaderBytes + DEFAULT_CHANNEL_LIMITS.maxPayloadBytes + 4;

/** The next IPC message from `child` that `pick` accepts; rejects on timeout or if the child exits first. */
function nextMessage<T>(child: ChildProcess, pick: (m: unknown) => T | undefined, what: string, timeoutMs: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: unknown) => {
      const v = pick(m);
      if (v === undefined) return;
      done();
      resolve(v);
    };
    const onExit = (code: number | null) => {
      done();
      reject(new Error(`${what}: process exited with ${code}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

/**
 * `warmup` rounds (default 3) run first and are reported apart, as in benchRound (TCP buffers
 * grow with traffic; V8 tiers up the hot paths).
 */
export async function benchRawTransferFloor(o: { connections: number; processes: number; parameters: number; chunkBytes: number; rounds: number; warmup?: number }): Promise<RawFloorResult> {
  const warmup = o.warmup ?? 3;
  if (o.connections < 1 || o.processes < 1 || o.parameters < 1 || o.rounds < 1) throw new Error('connections, processes, parameters and rounds must be at least 1');
  // A chunk above fedmed's maxPayload would be refused by the receiver, as it would by fedmed.
  if (o.chunkBytes < 1 || o.chunkBytes > MAX_PAYLOAD) throw new Error(`chunkBytes must be within 1..${MAX_PAYLOAD}`);
  const cfg: RawFloorConfig = { connections: o.connections, parameters: o.parameters, chunkBytes: o.chunkBytes, smallBytes: SMALL_BYTES, keyPhases: KEY_PHASES, maxPayload: MAX_PAYLOAD };
  const stdio: ['ignore', 'ignore', 'inherit', 'ipc'] = ['ignore', 'ignore', 'inherit', 'ipc'];
  const server = spawn(process.execPath, [join(here, 'rawFloorServer.js'), JSON.stringify(cfg)], { stdio });
  const clients: ChildProcess[] = [];
  try {
    const port = await nextMessage(server, (m) => (m as { port?: number } | null)?.port, 'the floor server', 60_000);
    // The connections spread over the processes as benchRound spreads its edges (i % P).
    for (let p = 0; p < Math.min(o.processes, o.connections); p++) {
      const count = Math.floor(o.connections / o.processes) + (p < o.connections % o.processes ? 1 : 0);
      const child = spawn(process.execPath, [join(here, 'rawFloorClients.js'), JSON.stringify(cfg), String(port), String(count)], { stdio });
      clients.push(child);
      await nextMessage(child, (m) => (m === 'ready' ? true : undefined), 'the floor clients', 60_000);
    }
    // A client dying mid-run would leave the server waiting: fail at once instead.
    const clientDied = new Promise<never>((_, reject) => {
      for (const c of clients) c.once('exit', (code) => reject(new Error(`a floor client process exited with ${code}`)));
    });
    const total = warmup + o.rounds;
    const ran = nextMessage(server, (m) => (m as { roundMs?: number[] } | null)?.roundMs, 'the floor rounds', 60_000 * total);
    server.send({ run: total });
    clientDied.catch(() => {}); // the clients are killed at the end: that exit is no error
    const times = await Promise.race([ran, clientDied]);
    const measured = times.slice(warmup);
    return {
      connections: o.connections,
      processes: clients.length,
      parameters: o.parameters,
      bytesPerRound: o.connections * (2 * KEY_PHASES * SMALL_BYTES + 4 * o.parameters + 4 * (o.parameters + 1)),
      warmupRoundMs: times.slice(0, warmup).map((t) => round(t, 1)),
      roundMs: measured.map((t) => round(t, 1)),
      medianRoundMs: round(median(measured), 1),
    };
  } finally {
    for (const c of [...clients, server]) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    }
  }
}

/** `runs` separate sets of fresh processes of benchRawTransferFloor; the median of their medians. */
export async function benchRawTransferFloorRuns(runs: number, o: Parameters<typeof benchRawTransferFloor>[0]): Promise<{ runs: RawFloorResult[]; medianRoundMs: number }> {
  const results: RawFloorResult[] = [];
  for (let i = 0; i < runs; i++) results.push(await benchRawTransferFloor(o));
  return { runs: results, medianRoundMs: median(results.map((r) => r.medianRoundMs)) };
}
