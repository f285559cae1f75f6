/**
 * The edge's federation client: connects to the coordinator's WebSocket, runs the handshake
 * (edgeHandshake.ts: the coordinator proves it holds a key the federation admin certified,
 * bound to this connection; then the site proves its own identity), then trains on `fit_ins`
 * (in a worker thread, so heartbeats keep flowing) and answers `eval_ins` with metrics on its
 * local validation data. Only the delta `local - global`, the example count and aggregate
 * metrics leave the site, and only under the protection the site requires. Its state changes go
 * into the site's hash-chained audit log (STATE_DIR/audit.jsonl, edge-client/audit/), and the
 * coordinator's signed audit chain heads are kept there (edgeAnchoring.ts). Reconnects with
 * exponential backoff and jitter; a revoked site or a coordinator that cannot prove itself
 * stops instead of retrying.
 *
 * Failover (a standby coordinator, README "Standby coordinator"): the edge knows several
 * coordinator URLs — those given at start (`fedmed edge start --coordinator URL,URL`, else the
 * one pinned at enrolment) and those the admin-signed coordinator certificate lists, learned at
 * each handshake — and when a connection cannot be made or authenticated it tries the next one.
 * Every URL passes the same checks as the enrolled one (TLS unless loopback or the site allowed
 * plain transport) and every connection the same handshake (the certificate, verified against
 * the pinned admin key, must name the URL dialled; channel binding): an unsigned URL is never
 * trusted, it is only dialled.
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { TfjsModel } from '../../models/tfjsModel.js';
import { FedmedError } from '../../shared/errors.js';
import { float32Bytes } from '../../shared/model/modelHash.js';
import { parseModelSpec, type ModelSpec } from '../../shared/model/modelSpec.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { DEFAULT_CHANNEL_LIMITS, MessageChannel, type FrameSocket } from '../../shared/protocol/messageChannel.js';
import type { Message, MessageOf, SiteMetrics } from '../../shared/protocol/messages.js';
import { NO_CHANNEL_BINDING, tlsChannelBinding } from '../../shared/protocol/channelBinding.js';
import { loadEncryptionKey, type SiteEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import { TrustError } from '../../shared/secure/trust/trustError.js';
import { CkksError } from '../../shared/secure/ckks/ckksErrors.js';
import { SecAggConfigError, SecAggProtocolError } from '../../shared/secure/secagg/secaggErrors.js';
import { EdgeCkks } from './edgeCkks.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import { EdgeHandshake, HandshakeError, type Authenticated } from './edgeHandshake.js';
import type { EdgeTrust } from './edgeTrust.js';
import { defaultPolicy, type SitePolicy } from '../policy/sitePolicy.js';
import { clamp01, SiteRules, type Refusal } from '../policy/siteRules.js';
import { checkCoordinatorUrl } from './transportSecurity.js';
import type { Dataset, DatasetSplits } from '../data/dataset.js';
import { isLocalData, type LocalData } from '../data/localData.js';
import { DataStatusReporter } from './dataStatusReporter.js';
import { DataParallelTrainer } from '../training/dataParallelTrainer.js';
import { evaluateModel, type LocalFitOptions, type LocalFitResult } from '../training/localTrainer.js';
import type { TrainingBackendName } from '../training/trainingBackend.js';
import { EdgeState } from './edgeState.js';
import { clipToNorm } from '../../shared/privacy/clipping.js';
import { addGaussianNoise, gaussianSample } from '../../shared/privacy/gaussianNoise.js';
import type { PrivacyMechanism } from '../../shared/privacy/privacyMechanism.js';
import { EdgeSecAggSession } from './secAggSession.js';
import { OtaApplier } from '../ota/otaApplier.js';
import { VersionStore, type StoredVersion } from '../ota/versionStore.js';
import { AuditLog, EDGE_OWNER } from '../../shared/audit/auditLog.js';
import { EdgeAuditSources } from '../audit/edgeAuditSources.js';
import { EdgeAnchoring } from '../audit/edgeAnchoring.js';

export class EdgeStopped extends FedmedError {
  constructor(message: string) {
    super('EDGE_STOPPED', message);
  }
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return a === b;
  }
}

/** An error about what the coordinator sent (keys, rosters, chains, signatures), never about the local data: its text may go back. */
function aboutTheCoordinator(err: unknown): boolean {
  return err instanceof CkksError || err instanceof TrustError || err instanceof SecAggProtocolError || err instanceof SecAggConfigError;
}

/** Accuracy of a model on local data (its own TfjsModel, released after). */
function localAccuracy(spec: ModelSpec, params: Float32Array, data: Dataset): number {
  const model = new TfjsModel(spec, params);
  try {
    return evaluateModel(model, data).accuracy;
  } finally {
    model.dispose();
  }
}

/** A round this site declines by its rules, found while it was under way (its budget, at release). */
class SiteRefusal extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.reason);
  }
}

export interface EdgeClientOptions {
  stateDir: string;
  modelCacheDir?: string;
  /** A data set loaded at start, or one read afresh for each round (the case store). */
  data: DatasetSplits | LocalData;
  /** Worker threads for local training (>= 1; training never runs on the event loop). */
  workers?: number;
  backend?: TrainingBackendName;
  /**
   * The site policy in force when STATE_DIR/policy.json does not exist (default: no budget, any
   * protection, automatic approval; see edge-client/policy/sitePolicy.ts). With a budget, the site
   * refuses rounds that are not differentially private or that would exceed it, by its own
   * accounting; without one, DP rounds are still recorded in the site's ledger but not limited.
   */
  policy?: SitePolicy;
  /**
   * Model OTA: the versions store (default keeps 3) and the hot swap that makes a verified
   * version live (default: only stored, nothing serves it).
   */
  ota?: { store?: VersionStore; install?: (v: StoredVersion, how: 'offer' | 'local') => Promise<void>; hold?: () => string | null; serving?: () => string | null; onBytes?: (n: number) => void };
  /** The site's trust (default: loaded from the state dir); share it with anything else that verifies admin signatures. */
  trust?: EdgeTrust;
  /** Backoff: first retry delay and cap, in ms. */
  backoffMs?: { initial: number; max: number };
  /**
   * Local training (default: a DataParallelTrainer with `workers` threads). The simulator passes
   * one that trains on the calling thread, since its sites already run in worker threads.
   */
  trainer?: EdgeTrainer;
  /**
   * Coordinator URLs to use, in order of preference (default: the one pinned at enrolment); the
   * URLs the coordinator's certificate lists are added as they are learned.
   */
  coordinatorUrls?: string[];
  /** Opens the connection to the coordinator (default: a WebSocket; the simulator: in-memory). */
  connect?: (url: URL) => ClientSocket;
  /** Simulated faults: asked before each protocol step; may delay it or drop the connection. */
  faults?: FaultHook;
  /** Least time between two `data_status` messages (default 5 s). */
  dataStatusIntervalMs?: number;
  log?: (event: string, detail?: Record<string, unknown>) => void;
}

/** What the edge needs of a trainer. */
export interface EdgeTrainer {
  fit(spec: ModelSpec, params: Float32Array, data: Dataset, options: LocalFitOptions): Promise<LocalFitResult>;
  close(): Promise<void>;
}

/** The client end of a connection: a frame socket that opens, can fail, and can be cut. */
export interface ClientSocket extends FrameSocket {
  on(event: 'upgrade', listener: (response: { socket: unknown }) => void): this;
  on(event: 'open', listener: () => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
  terminate(): void;
}

/** A protocol step a fault can hit: receiving fit/eval instructions, sending a result, a SecAgg+ phase. */
export type FaultPoint = 'fit' | 'fit_res' | 'evaluate' | 'secagg_roster' | 'secagg_relay' | 'secagg_consistency' | 'secagg_unmask';
export type FaultAction = { kind: 'none' } | { kind: 'drop' } | { kind: 'delay'; ms: number };
export type FaultHook = (point: FaultPoint, experiment: string, round: number) => FaultAction;

export class EdgeClient extends EventEmitter {
  private readonly state: EdgeState;
  private socket: ClientSocket | null = null;
  private channel: MessageChannel | null = null;
  private stopped = false;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private readonly cancelled = new Set<string>();
  /** Open SecAgg+ sessions by experiment/round. */
  private readonly secure = new Map<string, EdgeSecAggSession>();
  /** A result finished while disconnected, sent after re-authenticating if still wanted. */
  private pending: { message: Message; payload?: Uint8Array } | null = null;
  private readonly log: NonNullable<EdgeClientOptions['log']>;
  /** Training workers kept across rounds (starting one costs about a second). */
  private readonly trainer: EdgeTrainer;
  readonly site: string;
  /** The coordinator URLs this edge dials, in order (failover); `urlIndex` is the current one. */
  private readonly urls: string[];
  private urlIndex = 0;
  /** The site allowed plain http/ws to a coordinator off this machine (at enrolment). */
  private readonly insecureTransport: boolean;
  /** Applies the coordinator's signed model updates. */
  readonly ota: OtaApplier;
  /** CKKS keys and this site's decrypted copies of encrypted models. */
  private readonly ckks: EdgeCkks;
  private encryptionKey: SiteEncryptionKey | null = null;
  /** The admin key this site pinned and the revocation list it holds. */
  readonly trust: EdgeTrust;
  /** Every rule of the site policy: what may leave, and in what form. */
  readonly rules: SiteRules;
  /** Readiness for the coordinator: give it the labelled counts (`dataStatus.update`), it sends what the policy lets out. */
  readonly dataStatus: DataStatusReporter;
  /** The authenticated session (null while disconnected or in the handshake). */
  private session: Authenticated | null = null;
  private readonly transportWarning: string | null;
  /** Since when the coordinator link is up (null while disconnected). */
  connectedSince: string | null = null;
  /** The site's hash-chained audit log (STATE_DIR/audit.jsonl). */
  readonly audit: AuditLog;
  /** Turns the events this client (and the edge node) log into audit entries. */
  readonly auditSources: EdgeAuditSources;
  private readonly anchoring: EdgeAnchoring;
  private started = false;

  constructor(private readonly o: EdgeClientOptions) {
    super();
    this.state = new EdgeState(o.stateDir, o.modelCacheDir);
    const { config } = this.state.load();
    this.site = config.site;
    this.insecureTransport = config.insecureTransport === true;
    this.urls = [...new Set(o.coordinatorUrls && o.coordinatorUrls.length > 0 ? o.coordinatorUrls : [config.coordinator])];
    // Refused here, before anything starts: plain http/ws to a remote coordinator without --insecure-transport.
    const warnings = this.urls.map((u) => checkCoordinatorUrl(u, this.insecureTransport).warning).filter((w): w is string => w !== null);
    this.transportWarning = warnings.length > 0 ? warnings.join('; ') : null;
    this.trust = o.trust ?? this.state.trust();
    this.ota = new OtaApplier({
      store: o.ota?.store ?? new VersionStore(o.stateDir),
      trust: this.trust,
      sessionKey: () => this.session?.coordinatorKey ?? null,
      send: (m) => (this.channel && !this.channel.isClosed ? this.channel.send(m) : Promise.reject(new Error('not connected'))),
      install: o.ota?.install ?? (async () => {}),
      serving: o.ota?.serving,
      hold: o.ota?.hold,
      otherBases: () => {
        const g = this.state.lastGlobalModel();
        return g ? [{ id: g.versionId, spec: g.spec, params: g.params }] : [];
      },
      log: (event, detail) => this.log(event, detail),
      onBytes: o.ota?.onBytes,
    });
    this.ckks = new EdgeCkks(this.state.ckksDir, this.site, this.trust, () => this.siteEncryptionKey(), (m) => (this.channel && !this.channel.isClosed ? this.channel.send(m) : Promise.reject(new Error('not connected'))));
    this.trainer = o.trainer ?? new DataParallelTrainer({ workers: o.workers ?? 1, backend: o.backend ?? 'wasm' });
    const log = o.log ?? ((event, detail) => console.log(JSON.stringify({ time: new Date().toISOString(), site: this.site, event, ...detail })));
    this.audit = AuditLog.open(o.stateDir, { warn: (d, message) => log('audit_warning', { ...d, message }), error: (d, message) => log('audit_error', { ...d, message }) }, EDGE_OWNER);
    this.auditSources = new EdgeAuditSources(this.audit);
    // Every event logged is also offered to the audit layer (which keeps the state changes).
    this.log = (event, detail) => {
      log(event, detail);
      this.auditSources.observe(event, detail);
    };
    this.anchoring = new EdgeAnchoring({
      audit: this.audit,
      site: this.site,
      identity: this.state.load().identity.privateKey,
      send: (m) => (this.channel && !this.channel.isClosed && this.session ? this.channel.send(m) : Promise.reject(new Error('not connected'))),
      log: (event, detail) => this.log(event, detail),
    });
    this.rules = new SiteRules(o.stateDir, o.policy ?? defaultPolicy(), (event, detail) => this.log(event, detail));
    this.dataStatus = new DataStatusReporter({
      shape: (counts, previous) => this.rules.dataStatus(counts, previous),
      send: (m) => (this.channel && !this.channel.isClosed && this.session ? this.channel.send(m) : null),
      minIntervalMs: o.dataStatusIntervalMs ?? 5000,
    });
  }

  /** The coordinator URL in use (or tried next). */
  get coordinatorUrl(): string {
    return this.urls[this.urlIndex];
  }

  /** Every coordinator URL this edge may fail over to, in order. */
  get coordinatorUrls(): readonly string[] {
    return this.urls;
  }

  start(): void {
    this.stopped = false;
    if (!this.started) this.auditSources.started(this.site, this.audit.integrity());
    this.started = true;
    if (this.transportWarning) this.log('insecure_transport', { warning: this.transportWarning });
    this.connect();
  }

  /** The X25519 key wrapped CKKS keys are opened with (made at enrolment). */
  private siteEncryptionKey(): SiteEncryptionKey {
    this.encryptionKey ??= loadEncryptionKey(this.state.encryptionKeyPath);
    return this.encryptionKey;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.dataStatus.stop();
    this.channel?.close(1000, 'edge shutting down');
    this.socket?.terminate();
    this.ckks.close();
    await this.trainer.close();
    this.anchoring.flush();
    if (this.started) this.auditSources.stopping(this.site);
    await this.audit.close();
  }

  private connect(): void {
    const { config, identity } = this.state.load();
    const coordinatorUrl = this.coordinatorUrl;
    const url = new URL('/v1/edge', coordinatorUrl);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    const socket: ClientSocket = this.o.connect
      ? this.o.connect(url)
      : new WebSocket(url, { maxPayload: DEFAULT_CHANNEL_LIMITS.maxHeaderBytes + DEFAULT_CHANNEL_LIMITS.maxPayloadBytes + 4, perMessageDeflate: false, minVersion: 'TLSv1.3' });
    this.socket = socket;
    const channel = new MessageChannel(socket);
    this.channel = channel;
    let binding: () => string = () => NO_CHANNEL_BINDING;
    const handshake = new EdgeHandshake({ site: config.site, identity: identity.privateKey, trust: this.trust, coordinatorUrl, channelBinding: () => binding(), log: (e, d) => this.log(e, d) });
    let lastHeard = Date.now();
    // The TLS socket the WebSocket runs on: its exporter value binds the handshake to this connection.
    socket.on('upgrade', (res) => {
      // (read now, checked in the handshake: an error there refuses the connection)
      let value: string | Error;
      try {
        value = tlsChannelBinding(res.socket);
      } catch (err) {
        value = err as Error;
      }
      binding = () => {
        if (value instanceof Error) throw value;
        return value;
      };
    });
    socket.on('open', () => void channel.send(handshake.hello()).catch(() => {}));
    socket.on('error', (err) => this.log('socket_error', { message: err.message }));
    channel.onError = (err) => this.log('protocol_error', { message: err.message });
    channel.onMessage = (m, payload) => {
      lastHeard = Date.now();
      if (!handshake.ready) {
        let step;
        try {
          step = handshake.receive(m);
        } catch (err) {
          if (!(err instanceof HandshakeError)) throw err;
          this.log('coordinator_refused', { reason: err.message });
          channel.close(CloseCode.AUTH_FAILED, err.message.slice(0, 120));
          if (err.fatal) this.fatal(`the coordinator could not prove it is the federation's coordinator: ${err.message}`);
          return;
        }
        if ('send' in step) return void channel.send(step.send).catch(() => {});
        this.session = step.ready;
        this.attempt = 0;
        this.connectedSince = new Date().toISOString();
        this.learnUrls(step.ready.coordinator.urls);
        this.log('connected', { coordinator: coordinatorUrl, certificate: step.ready.coordinator.serial });
        const heartbeatMs = step.ready.heartbeatMs;
        this.heartbeat = setInterval(() => {
          // A coordinator that went silent (crash, network partition) is given up on, so that
          // reconnection starts instead of waiting for TCP to notice.
          if (Date.now() - lastHeard > 6 * heartbeatMs) return void socket.terminate();
          void channel.send({ type: 'heartbeat', t: Date.now() }).catch(() => {});
        }, heartbeatMs).unref();
        this.flushPending();
        this.dataStatus.connected();
        this.emit('ready');
        return;
      }
      this.handle(m, payload);
    };
    socket.on('close', (code, reasonBuf) => {
      if (this.heartbeat) clearInterval(this.heartbeat);
      const wasReady = handshake.ready;
      this.connectedSince = null;
      this.session = null;
      const reason = reasonBuf.toString();
      this.log('disconnected', { code, reason });
      // Masks cannot be resumed on a new connection: the coordinator counts this site as dropped.
      for (const session of this.secure.values()) session.cancel('connection lost during the secure round');
      this.secure.clear();
      this.ckks.disconnected();
      this.emit('disconnected', code, reason);
      if (this.stopped) return;
      if (code === CloseCode.REVOKED) return this.fatal(`the coordinator revoked this site: ${reason}`);
      if (code === CloseCode.AUTH_FAILED && !wasReady && /unknown or not enrolled/.test(reason)) return this.fatal(`the coordinator does not know this site: ${reason}`);
      const base = this.o.backoffMs ?? { initial: 500, max: 30_000 };
      // Not authenticated on this URL: the next one (a standby that took over); the backoff grows
      // once per pass over the list. A session that was up retries its URL first.
      let exponent: number;
      if (!wasReady && this.urls.length > 1) {
        this.urlIndex = (this.urlIndex + 1) % this.urls.length;
        if (this.urlIndex === 0) this.attempt++;
        exponent = this.attempt;
      } else exponent = this.attempt++;
      const delay = Math.min(base.max, base.initial * 2 ** exponent) * (0.5 + Math.random() * 0.5);
      this.retryTimer = setTimeout(() => this.connect(), delay);
    });
  }

  /**
   * The URLs an authenticated coordinator's certificate lists (signed by the federation admin):
   * added to those this edge fails over to, if this edge may use them (transportSecurity.ts).
   */
  private learnUrls(urls: readonly string[]): void {
    for (const u of urls) {
      if (this.urls.some((known) => sameOrigin(known, u))) continue;
      try {
        checkCoordinatorUrl(u, this.insecureTransport);
      } catch (err) {
        this.log('coordinator_url_skipped', { url: u, reason: (err as Error).message });
        continue;
      }
      this.urls.push(u);
      this.log('coordinator_url_learned', { url: u, urls: [...this.urls] });
    }
  }

  private fatal(message: string): void {
    this.stopped = true;
    void this.trainer.close();
    this.log('stopped', { reason: message });
    this.emit('fatal', new EdgeStopped(message));
  }

  /**
   * The simulated fault at a protocol step, if any: 'drop' cuts the connection here (as a crash
   * or a network loss would) and the step is not taken; 'delay' is the caller's to apply.
   */
  private injectFault(point: FaultPoint, experiment: string, round: number): FaultAction {
    const action = this.o.faults?.(point, experiment, round) ?? { kind: 'none' };
    if (action.kind === 'none') return action;
    this.log('fault_injected', { point, experiment, round, ...action });
    if (action.kind === 'drop') this.socket?.terminate();
    return action;
  }

  private handle(m: Message, payload: Buffer): void {
    if (this.o.faults && (m.type === 'fit_ins' || m.type === 'eval_ins' || m.type === 'secagg_roster' || m.type === 'secagg_relay' || m.type === 'secagg_consistency' || m.type === 'secagg_unmask')) {
      const action = this.injectFault(m.type === 'fit_ins' ? 'fit' : m.type === 'eval_ins' ? 'evaluate' : m.type, m.experiment, m.round);
      if (action.kind === 'drop') return;
      if (action.kind === 'delay') {
        const copy = Buffer.from(payload); // the payload is only valid until the next message
        return void setTimeout(() => this.dispatch(m, copy), action.ms);
      }
    }
    this.dispatch(m, payload);
  }

  private dispatch(m: Message, payload: Buffer): void {
    switch (m.type) {
      case 'heartbeat':
        return;
      case 'revocations':
        try {
          if (this.trust.acceptRevocations(m.list)) this.log('revocations_updated', { sequence: this.trust.revocationSequence });
        } catch (err) {
          if (!(err instanceof TrustError)) throw err;
          this.log('revocations_refused', { reason: err.message, held: this.trust.revocationSequence });
        }
        return;
      case 'round_cancel':
        this.cancelled.add(`${m.experiment}/${m.round}`);
        this.secure.get(`${m.experiment}/${m.round}`)?.cancel(`round cancelled: ${m.reason}`);
        this.secure.delete(`${m.experiment}/${m.round}`);
        this.log('round_cancelled', { experiment: m.experiment, round: m.round, reason: m.reason });
        return;
      case 'fit_ins':
        // CKKS rounds carry no model: the edge decrypts its own copy.
        void this.fit(m, m.ckks ? null : this.params(m.spec, payload));
        return;
      case 'eval_ins':
        void this.evaluate(m, m.ckksKeySet ? null : this.params(m.spec, payload));
        return;
      case 'ckks_key':
      case 'ckks_chain':
      case 'ckks_refused':
        return this.ckks.onReply(m, payload);
      case 'model_offer':
        return this.ota.onOffer(m);
      case 'model_chunk':
        return this.ota.onChunk(m, payload);
      case 'audit_head':
        return this.anchoring.onCoordinatorHead(m, this.session ? { key: this.session.coordinatorKey, publicKeyB64: this.session.coordinator.publicKey } : null);
      case 'secagg_roster':
      case 'secagg_relay':
      case 'secagg_consistency':
      case 'secagg_unmask': {
        const key = `${m.experiment}/${m.round}`;
        const session = this.secure.get(key);
        if (!session) return void this.log('secagg_ignored', { type: m.type, experiment: m.experiment, round: m.round, reason: 'no open secure session for this round' });
        session.onMessage(m).then(
          () => m.type === 'secagg_unmask' && this.secure.delete(key),
          (err: Error) => {
            this.secure.delete(key);
            this.log('secagg_refused', { type: m.type, experiment: m.experiment, round: m.round, reason: err.message });
            // Tell the coordinator (an honest one stops waiting; a lying one learns only that it was caught).
            void this.channel?.send({ type: 'secagg_refused', experiment: m.experiment, round: m.round, session: m.session, reason: err.message.slice(0, 2000) }).catch(() => {});
          },
        );
        return;
      }
      default:
        throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `unexpected ${m.type} from the coordinator`);
    }
  }

  /** Checks the spec and copies the global parameters out of the frame. */
  private params(specJson: unknown, payload: Buffer): { spec: ModelSpec; params: Float32Array } {
    const spec = parseModelSpec(specJson, 'coordinator model spec');
    const size = layoutOf(spec).size;
    if (payload.byteLength !== size * 4) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `global model has ${payload.byteLength} bytes, the spec needs ${size * 4}`);
    const params = new Float32Array(size);
    new Uint8Array(params.buffer).set(payload);
    return { spec, params };
  }

  /** A CKKS round's model: this site's copy, brought up to the named version by decrypting. */
  private async encryptedModel(experiment: string, version: string, specJson: unknown, keySet: string): Promise<{ spec: ModelSpec; params: Float32Array }> {
    const spec = parseModelSpec(specJson, 'coordinator model spec');
    return { spec, params: await this.ckks.model(experiment, version, spec, keySet) };
  }

  private async fit(m: MessageOf<'fit_ins'>, model: { spec: ModelSpec; params: Float32Array } | null): Promise<void> {
    const key = `${m.experiment}/${m.round}`;
    const started = performance.now();
    let reply: { message: Message; payload?: Uint8Array };
    let decision: ReturnType<SiteRules['fit']>;
    let data: DatasetSplits;
    try {
      data = this.localData(m.spec);
      decision = this.rules.fit(m, data.train.y.length);
    } catch (err) {
      // A fit_ins the rules cannot even read (a spec that does not parse, say): refused, not a crash.
      return this.refuse(m, { kind: 'policy', reason: `this site cannot check the round against its policy: ${(err as Error).message}` });
    }
    if ('refusal' in decision) return this.refuse(m, decision.refusal);
    const plan = decision.plan;
    this.log('fit_started', { experiment: m.experiment, round: m.round, examples: data.train.y.length });
    // Pinned before anything awaits: a plaintext fit_ins slipped in while this round waits on the
    // coordinator (a CKKS chain, say) is then refused too, as is a second release of this round.
    this.rules.security.record(m);
    let secure: EdgeSecAggSession | undefined;
    /** Set once local data is touched: errors from then on may describe it. */
    let onLocalData = false;
    try {
      const { spec, params } = model ?? (await this.encryptedModel(m.experiment, m.modelVersion, m.spec, m.ckks!.keySet));
      if (m.security) {
        // Key exchange runs while the model trains.
        secure = new EdgeSecAggSession(this.site, m, m.security, this.state.load().identity.privateKey, this.trust, (msg) => (this.channel ? this.channel.send(msg) : Promise.reject(new Error('not connected'))), this.rules.secaggRules(plan.policy));
        this.secure.set(key, secure);
        await secure.start();
      }
      this.state.saveGlobalModel(m.modelVersion, spec, params);
      onLocalData = true;
      const startAccuracy = this.rules.releasesNoisedAccuracy(m, plan) ? localAccuracy(spec, params, data.train) : undefined;
      const r = await this.trainer.fit(spec, params, data.train, m.config);
      const delta = new Float32Array(params.length);
      for (let i = 0; i < delta.length; i++) delta[i] = r.params[i] - params[i];
      const last = r.history[r.history.length - 1];
      if (!Number.isFinite(last.trainLoss) || !delta.every(Number.isFinite)) throw new Error('local training diverged (non-finite loss or parameters); try a lower learning rate');
      let clipIndicator: number | undefined;
      if (m.privacy) {
        // Clip the whole update to C and add the noise this site computes itself (CSPRNG; under
        // SecAgg+ distributed mode, as integers after quantisation, below).
        const { norm } = clipToNorm(delta, m.privacy.clip);
        if (plan.noise.kind === 'gaussian') addGaussianNoise(delta, plan.noise.stddev);
        // Adaptive clipping: b − 1/2 (sensitivity 1/2), with the site's own noise (it leaves in the clear).
        if (plan.clipBitStddev !== null) clipIndicator = (norm <= m.privacy.clip ? 0.5 : -0.5) + gaussianSample(plan.clipBitStddev);
        if (!plan.charge) this.log('released_without_site_noise', { experiment: m.experiment, round: m.round, mode: m.privacy.mode });
      }
      const shaped = this.rules.shapeFit(m, plan, r.numExamples, { loss: last.trainLoss, accuracy: last.trainAccuracy }, startAccuracy);
      const header = { experiment: m.experiment, round: m.round, numExamples: shaped.numExamples, metrics: shaped.metrics ?? {}, ...(clipIndicator !== undefined ? { clipIndicator } : {}) };
      // The ledger is charged (and synced) with every mechanism of the round before anything leaves; over budget: nothing leaves.
      const release = (update: PrivacyMechanism): void => {
        // Central mode runs no mechanism on the update here, but a noised count or accuracy is still one.
        const mechanisms = plan.charge ? [update, ...shaped.mechanisms] : shaped.mechanisms;
        if (mechanisms.length === 0) return;
        const over = this.rules.budgetRefusal(m, mechanisms);
        if (over) throw new SiteRefusal({ kind: 'privacy_budget', reason: over });
        this.rules.charge(m, plan, mechanisms);
      };
      if (secure) {
        const integerNoise = plan.noise.kind === 'secagg-integer' ? { totalStddev: plan.noise.totalStddev, clip: m.privacy!.clip, beforeRelease: release } : undefined;
        if (!integerNoise) release({ kind: 'gaussian', noiseMultiplier: m.privacy?.noiseMultiplier ?? 0 });
        const masked = await secure.maskedResult(delta, shaped.numExamples, header, integerNoise);
        if (masked.clipped > 0) this.log('secagg_values_clipped', { experiment: m.experiment, round: m.round, clipped: masked.clipped, range: secure.params.range });
        reply = masked;
      } else if (m.ckks) {
        release({ kind: 'gaussian', noiseMultiplier: m.privacy?.noiseMultiplier ?? 0 });
        const encrypted = await this.ckks.encryptUpdate(delta, shaped.numExamples, m.ckks);
        if (encrypted.clipped > 0) this.log('ckks_values_clipped', { experiment: m.experiment, round: m.round, clipped: encrypted.clipped, range: m.ckks.range });
        reply = { message: { type: 'fit_res', ...header }, payload: encrypted.payload };
      } else {
        release({ kind: 'gaussian', noiseMultiplier: m.privacy?.noiseMultiplier ?? 0 });
        reply = { message: { type: 'fit_res', ...header }, payload: float32Bytes(delta) };
      }
      this.log('fit_done', { experiment: m.experiment, round: m.round, seconds: (performance.now() - started) / 1000, loss: last.trainLoss });
    } catch (err) {
      secure?.cancel('local failure');
      this.secure.delete(key);
      if (err instanceof SiteRefusal) return this.refuse(m, err.refusal);
      // The error text stays here unless the site releases its counts exactly anyway: it can state them (tensor shapes).
      const reason = !onLocalData || aboutTheCoordinator(err) || this.rules.errorDetailsMayLeave(m, plan.policy) ? (err as Error).message.slice(0, 1000) : 'local training failed; the reason is in the site\'s log (this site\'s policy keeps error details that could describe its data)';
      reply = { message: { type: 'fit_failed', experiment: m.experiment, round: m.round, reason } };
      this.log('fit_failed', { experiment: m.experiment, round: m.round, reason: (err as Error).message });
    }
    if (this.cancelled.has(key)) return void this.log('result_discarded', { experiment: m.experiment, round: m.round, reason: 'round cancelled' });
    const action = this.injectFault('fit_res', m.experiment, m.round);
    if (action.kind === 'drop') return;
    if (action.kind === 'delay') return void setTimeout(() => !this.cancelled.has(key) && this.deliver(reply), action.ms);
    this.deliver(reply);
  }

  /** Declines a round's fit or evaluation on purpose: logged here, and the coordinator is told why (nothing else leaves). */
  private refuse(m: MessageOf<'fit_ins' | 'eval_ins'>, r: Refusal): void {
    const fit = m.type === 'fit_ins';
    this.log(fit ? 'fit_refused' : 'evaluate_refused', { experiment: m.experiment, round: m.round, kind: r.kind, reason: r.reason });
    this.deliver({ message: { type: fit ? 'fit_failed' : 'eval_failed', experiment: m.experiment, round: m.round, reason: r.reason.slice(0, 2000), refused: r.kind } });
  }

  /** The local splits for the round's model (a case store's labelled cases match the model's input spec). */
  private localData(specJson: unknown): DatasetSplits {
    const d = this.o.data;
    if (!isLocalData(d)) return d;
    let spec: ModelSpec | null = null;
    try {
      spec = parseModelSpec(specJson, 'coordinator model spec');
    } catch {
      // the round's own parsing refuses it, with the reason
    }
    return d.splitsFor(spec);
  }

  /** ε this site has spent (all experiments), at its budget's δ. */
  privacySpent(): number {
    return this.rules.spent();
  }

  private async evaluate(m: MessageOf<'eval_ins'>, global: { spec: ModelSpec; params: Float32Array } | null): Promise<void> {
    let data: Dataset;
    let allowed: ReturnType<SiteRules['evaluation']>;
    try {
      const splits = this.localData(m.spec);
      data = splits.val && splits.val.y.length > 0 ? splits.val : splits.test;
      allowed = this.rules.evaluation(m, data.y.length);
    } catch (err) {
      return this.refuse(m, { kind: 'policy', reason: `this site cannot check the evaluation against its policy: ${(err as Error).message}` });
    }
    if ('refusal' in allowed) return this.refuse(m, allowed.refusal);
    // One evaluation per DP round: taken before anything awaits (a second eval_ins is refused meanwhile).
    if (allowed.release === 'noised') this.rules.security.recordEvaluation(m.experiment, m.round);
    let model: TfjsModel | null = null;
    try {
      const { spec, params } = global ?? (await this.encryptedModel(m.experiment, m.modelVersion, m.spec, m.ckksKeySet!));
      this.state.saveGlobalModel(m.modelVersion, spec, params);
      model = new TfjsModel(spec, params);
      const r = evaluateModel(model, data);
      let metrics: SiteMetrics = { loss: r.loss, accuracy: r.accuracy, ...(Number.isFinite(r.auc) ? { auc: r.auc } : {}) };
      let numExamples = allowed.release === 'exact' ? allowed.numExamples(r.numExamples) : r.numExamples;
      if (allowed.release === 'noised') {
        // A DP experiment: only the accuracy, noised with the round's z (see siteRules.ts); paid with the round's fit.
        metrics = { accuracy: clamp01(r.accuracy + gaussianSample(allowed.accuracyStddev)) };
        numExamples = 1;
      }
      this.deliver({ message: { type: 'eval_res', experiment: m.experiment, round: m.round, numExamples, metrics } });
      this.log('evaluated', { experiment: m.experiment, round: m.round, ...metrics });
    } catch (err) {
      // A model that does not fit the local data (or will not decrypt): an answer, never a crash.
      this.log('evaluate_failed', { experiment: m.experiment, round: m.round, reason: (err as Error).message });
      const reason = allowed.release === 'exact' && allowed.errorDetails ? (err as Error).message.slice(0, 2000) : 'evaluation failed; the reason is in the site\'s log (this site\'s policy keeps error details that could describe its data)';
      this.deliver({ message: { type: 'eval_failed', experiment: m.experiment, round: m.round, reason } });
    } finally {
      model?.dispose();
    }
  }

  private deliver(reply: { message: Message; payload?: Uint8Array }): void {
    if (this.channel && !this.channel.isClosed) {
      this.channel.send(reply.message, reply.payload).then(() => this.resultSent(reply.message), (err: Error) => {
        if (err instanceof ProtocolError && err.closeCode === CloseCode.PROTOCOL_ERROR) {
          // Our own message failed validation (e.g. a NaN loss): report the failure instead.
          const m = reply.message as { experiment?: string; round?: number };
          if (reply.message.type === 'fit_res' && m.experiment && m.round) this.deliver({ message: { type: 'fit_failed', experiment: m.experiment, round: m.round, reason: `invalid result: ${err.message}` } });
          this.log('invalid_result', { reason: err.message });
        } else this.pending = reply;
      });
    } else {
      this.pending = reply; // rejoin: send after reconnecting, if the round is still open
    }
  }

  /** A result went out: the audit entry of an update, and this site's signed audit head after it. */
  private resultSent(m: Message): void {
    if (m.type === 'fit_res') this.log('update_sent', { experiment: m.experiment, round: m.round, numExamples: m.numExamples, masked: m.signature !== undefined });
    if (m.type === 'fit_res' || m.type === 'fit_failed' || m.type === 'eval_res' || m.type === 'eval_failed') void this.anchoring.sendOwnHead();
  }

  private flushPending(): void {
    const p = this.pending;
    this.pending = null;
    // A masked input belongs to a secure session that ended with the old connection.
    if (p?.message.type === 'fit_res' && p.message.signature) return void this.log('result_discarded', { reason: 'secure round interrupted by a reconnection' });
    if (p) this.deliver(p);
  }
}
