/**
 * Benchmark helper process: N edges in one process that speak the real protocol (the edge's
 * handshake with certificate checks, enrolled keys, frames; the real SecAgg+ client with its
 * roster checks and consistency round) but answer every `fit_ins` at once with a fixed update,
 * so a benchmark measures the coordinator and the network, not training.
 *   node dist/bench/fixedUpdateEdges.js URL STATE_JSON
 * STATE_JSON: [{ site, privateKeyPem, encryptionKeyPem, adminPublicKey }]; prints "ready" when all are authenticated.
 * CKKS: the first CKKS fit_ins fetches and unwraps the key set's secret key and encrypts the
 * fixed update once, which every site then sends.
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import WebSocket from 'ws';
import { float32Bytes } from '../shared/model/modelHash.js';
import { tlsChannelBinding } from '../shared/protocol/channelBinding.js';
import { DEFAULT_CHANNEL_LIMITS, encodeMessage, MessageChannel } from '../shared/protocol/messageChannel.js';
import { FederationTrust } from '../shared/secure/trust/federationTrust.js';
import { EdgeHandshake } from '../edge-client/federation/edgeHandshake.js';
import { EdgeSecAggSession } from '../edge-client/federation/secAggSession.js';
import { encodeUpdate } from '../shared/secure/secagg/fixedPoint.js';
import { parseModelSpec } from '../shared/model/modelSpec.js';
import { layoutOf } from '../shared/model/parameterLayout.js';
import type { MessageOf } from '../shared/protocol/messages.js';
import { CkksSecretKey } from '../shared/secure/ckks/ckksSecretKey.js';
import { encodeCkksUpdate } from '../shared/secure/ckks/ckksUpdate.js';
import { unwrapSecretKey } from '../shared/secure/ckks/keyWrap.js';

const [url, stateFile] = process.argv.slice(2);
const sites = JSON.parse(readFileSync(stateFile, 'utf8')) as { site: string; privateKeyPem: string; encryptionKeyPem: string; adminPublicKey: string }[];
let ready = 0;
let update: Uint8Array | null = null;
let fitRes: { key: string; frames: Buffer[] } | null = null;
const secure = new Map<string, EdgeSecAggSession>();
/** CKKS: the fixed update, encrypted once per process (the first site to need it fetches the key). */
let ckksUpdate: Promise<Uint8Array> | null = null;
const keyReplies = new Map<string, (wrapped: Buffer) => void>();
/** SecAgg+: the fixed update, quantised once per round and process (each site masks its own copy). */
let encoded: { key: string; words: Uint32Array } | null = null;

function encryptedUpdate(site: string, m: MessageOf<'fit_ins'>, encryptionKeyPem: string, channel: MessageChannel): Promise<Uint8Array> {
  ckksUpdate ??= (async () => {
    const wrapped = await new Promise<Buffer>((resolve) => {
      keyReplies.set(site, resolve);
      void channel.send({ type: 'ckks_key_req', keySet: m.ckks!.keySet });
    });
    const key = await CkksSecretKey.load(unwrapSecretKey(wrapped, createPrivateKey(encryptionKeyPem), m.ckks!.keySet, site));
    const size = layoutOf(parseModelSpec(m.spec, 'bench spec')).size;
    return key.encrypt(encodeCkksUpdate(new Float32Array(size).fill(1e-3), 100, m.ckks!).values);
  })();
  return ckksUpdate;
}

for (const { site, privateKeyPem, encryptionKeyPem, adminPublicKey } of sites) {
  const key = createPrivateKey(privateKeyPem);
  const trust = new FederationTrust(adminPublicKey);
  // A zero WebSocket mask (RFC 6455 client masking guards proxies on plain HTTP): this load
  // generator shares the coordinator's 2 cores, and XOR-ing 40 MB per round is not the coordinator's cost.
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/edge`, { maxPayload: DEFAULT_CHANNEL_LIMITS.maxPayloadBytes + DEFAULT_CHANNEL_LIMITS.maxHeaderBytes + 4, perMessageDeflate: false, generateMask: (mask) => void mask.fill(0) });
  const channel = new MessageChannel(ws);
  let binding = 'none';
  const handshake = new EdgeHandshake({ site, identity: key, trust, coordinatorUrl: url, channelBinding: () => binding, log: () => {} });
  ws.on('upgrade', (res) => void (binding = tlsChannelBinding(res.socket)));
  ws.on('open', () => void channel.send(handshake.hello()));
  channel.onMessage = (m, payload) => {
    if (!handshake.ready) {
      const step = handshake.receive(m);
      if ('send' in step) void channel.send(step.send);
      else if (++ready === sites.length) process.stdout.write('ready\n');
    } else if (m.type === 'ckks_key') {
      keyReplies.get(site)?.(Buffer.from(payload));
    } else if (m.type === 'fit_ins' && m.ckks) {
      void encryptedUpdate(site, m, encryptionKeyPem, channel).then(
        (bytes) => channel.send({ type: 'fit_res', experiment: m.experiment, round: m.round, numExamples: 100, metrics: { loss: 0.5, accuracy: 0.5 } }, bytes),
        (err: Error) => process.stderr.write(`${site}: ${err.message}\n`),
      );
    } else if (m.type === 'fit_ins' && m.security) {
      // SecAgg+: the real edge protocol code, with a fixed update instead of training.
      const session = new EdgeSecAggSession(site, m, m.security, key, trust, (msg) => channel.send(msg));
      secure.set(site, session);
      void session.start();
      // Every site sends the same fixed update: it is quantised once per round and process; the
      // masking and signing (each site's own keys) run per site, as at a real edge.
      const roundKey = `${m.experiment}/${m.round}`;
      if (encoded?.key !== roundKey) encoded = { key: roundKey, words: encodeUpdate(new Float32Array(payload.byteLength / 4).fill(1e-3), Math.min(100, m.security.maxWeight), m.security).words };
      const header = { experiment: m.experiment, round: m.round, numExamples: 100, metrics: { loss: 0.5, accuracy: 0.5 } };
      void session.maskedWords(encoded.words.slice(), header).then(
        (r) => channel.send(r.message, r.payload),
        (err: Error) => process.stderr.write(`${site}: ${err.message}\n`),
      );
    } else if (m.type === 'secagg_roster' || m.type === 'secagg_relay' || m.type === 'secagg_consistency' || m.type === 'secagg_unmask') {
      void secure.get(site)?.onMessage(m).catch((err: Error) => process.stderr.write(`${site}: ${err.message}\n`));
    } else if (m.type === 'fit_ins') {
      // The same small fixed delta for everyone, allocated once; the fit_res frames are encoded
      // once per round and process (every site of it sends the same bytes), so that this load
      // generator takes as little as it can of the CPU it shares with the coordinator.
      if (!update || update.byteLength !== payload.byteLength) update = float32Bytes(new Float32Array(payload.byteLength / 4).fill(1e-3));
      const key = `${m.experiment}/${m.round}`;
      if (fitRes?.key !== key) fitRes = { key, frames: encodeMessage({ type: 'fit_res', experiment: m.experiment, round: m.round, numExamples: 100, metrics: { loss: 0.5, accuracy: 0.5 } }, update, DEFAULT_CHANNEL_LIMITS.chunkBytes) };
      void channel.sendEncoded(fitRes.frames);
    }
  };
  ws.on('error', (err) => process.stderr.write(`${site}: ${err.message}\n`));
}

// A clean exit on SIGTERM (so `--cpu-prof` and other exit-time reports are written).
process.once('SIGTERM', () => process.exit(0));
