/**
 * One edge's WebSocket session on the coordinator: protocol version agreement, mutual
 * authentication (the coordinator presents its admin-signed certificate and signs the site's
 * name, a fresh nonce and the TLS channel binding with the certified key; the site signs the
 * same with its enrolled key), heartbeats, and hand-off of round messages.
 */
import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { CoordinatorCertificate, RevocationList } from '../../shared/secure/trust/certificates.js';
import { MessageChannel, type ChannelLimits, type FrameSocket } from '../../shared/protocol/messageChannel.js';
import { AUTH_DOMAIN, CHALLENGE_DOMAIN, PROTOCOL_VERSIONS, type Message } from '../../shared/protocol/messages.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import { publicKeyFromB64, signMessage, verifyMessage } from '../../shared/secure/identity.js';
import type { SiteRecord } from '../store/storeSchema.js';

export interface SessionHooks {
  findSite(name: string): SiteRecord | undefined;
  /** The certified key and its certificate (null: not certified yet, no site is served), and the held revocation list. */
  credentials(): { key: KeyObject; certificate: CoordinatorCertificate; revocations: RevocationList | null } | null;
  /** Why a site's certificate is revoked, or null. */
  revokedCertificate(site: SiteRecord): string | null;
  onReady(session: EdgeSession): void;
  onMessage(session: EdgeSession, message: Message, payload: Buffer): void;
  onClosed(session: EdgeSession, code: number, reason: string): void;
  log: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export interface SessionTimeouts {
  authMs: number;
  heartbeatMs: number;
  /** Close after this long without any message from the edge. */
  idleMs: number;
}

export class EdgeSession {
  readonly channel: MessageChannel;
  site: string | null = null;
  /** Set by the gateway: runs once when the edge has authenticated (before onReady's hand-off). */
  onAuthenticated: () => void = () => {};
  /** The protocol version agreed in the hello. */
  version = 0;
  private state: 'hello' | 'auth' | 'ready' | 'closed' = 'hello';
  private nonce = '';
  private lastHeard = Date.now();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(
    socket: FrameSocket,
    limits: ChannelLimits & { preAuthFrameBytes?: number },
    private readonly hooks: SessionHooks,
    private readonly timeouts: SessionTimeouts,
    readonly remote: string,
    /** The connection's TLS channel binding (`none` on plain TCP), covered by both handshake signatures. */
    private readonly binding: string,
  ) {
    // Until the edge authenticates: small single frames only (hello, auth), no chunked transfers.
    this.channel = new MessageChannel(socket, limits, { preAuthFrameBytes: limits.preAuthFrameBytes });
    this.channel.onMessage = (m, p) => this.handle(m, p);
    this.channel.onError = (err) => hooks.log.warn({ site: this.site, remote, code: err.closeCode }, `edge connection closed: ${err.message}`);
    socket.on('close', (code, reason) => this.closed(code, reason.toString()));
    this.timers.push(setTimeout(() => this.state !== 'ready' && this.close(CloseCode.AUTH_FAILED, 'authentication timed out'), timeouts.authMs));
  }

  get ready(): boolean {
    return this.state === 'ready';
  }

  close(code: number, reason: string): void {
    this.channel.close(code as 1000, reason);
  }

  send(message: Message, payload?: Uint8Array): Promise<void> {
    return this.channel.send(message, payload);
  }

  private handle(message: Message, payload: Buffer): void {
    this.lastHeard = Date.now();
    if (this.state === 'hello') return this.hello(message);
    if (this.state === 'auth') return this.auth(message);
    if (message.type === 'heartbeat') return;
    this.hooks.onMessage(this, message, payload);
  }

  private hello(m: Message): void {
    if (m.type !== 'hello') throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `expected hello, got ${m.type}`);
    const version = Math.max(...m.versions.filter((v) => (PROTOCOL_VERSIONS as readonly number[]).includes(v)));
    if (!Number.isFinite(version)) throw new ProtocolError(CloseCode.UNSUPPORTED_VERSION, `no common protocol version (coordinator speaks ${PROTOCOL_VERSIONS.join(', ')})`);
    const site = this.hooks.findSite(m.site);
    if (!site || !site.publicKey) throw new ProtocolError(CloseCode.AUTH_FAILED, `unknown or not enrolled site "${m.site}"`);
    if (site.revokedAt) throw new ProtocolError(CloseCode.REVOKED, `site "${m.site}" is revoked`);
    const revoked = this.hooks.revokedCertificate(site);
    if (revoked) throw new ProtocolError(CloseCode.REVOKED, revoked);
    const credentials = this.hooks.credentials();
    if (!credentials) throw new ProtocolError(CloseCode.AUTH_FAILED, 'this coordinator has no certificate from the federation admin yet (fedmed federation certify-coordinator); try again later');
    this.site = m.site;
    this.version = version;
    this.nonce = randomBytes(32).toString('base64url');
    this.state = 'auth';
    const challenge = { type: 'challenge' as const, version, nonce: this.nonce, signature: signMessage(credentials.key, CHALLENGE_DOMAIN, m.site, this.nonce, this.binding), certificate: credentials.certificate };
    void this.send(credentials.revocations ? { ...challenge, revocations: credentials.revocations } : challenge).catch(() => {});
  }

  private auth(m: Message): void {
    if (m.type !== 'auth') throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `expected auth, got ${m.type}`);
    const site = this.hooks.findSite(this.site!);
    if (!site?.publicKey || site.revokedAt) throw new ProtocolError(CloseCode.REVOKED, `site "${this.site}" is no longer allowed`);
    if (!verifyMessage(publicKeyFromB64(site.publicKey), m.signature, AUTH_DOMAIN, this.site!, this.nonce, this.binding)) {
      throw new ProtocolError(CloseCode.AUTH_FAILED, 'bad signature: the site did not prove possession of its enrolled key');
    }
    this.state = 'ready';
    this.channel.lift();
    this.hooks.log.info({ site: this.site, remote: this.remote }, 'edge authenticated');
    void this.send({ type: 'welcome', site: this.site!, heartbeatMs: this.timeouts.heartbeatMs }).catch(() => {});
    this.timers.push(
      setInterval(() => {
        if (Date.now() - this.lastHeard > this.timeouts.idleMs) this.close(CloseCode.HEARTBEAT_TIMEOUT, `no message for ${this.timeouts.idleMs} ms`);
        else void this.send({ type: 'heartbeat', t: Date.now() }).catch(() => {});
      }, this.timeouts.heartbeatMs).unref(),
    );
    this.hooks.onReady(this);
  }

  private closed(code: number, reason: string): void {
    const wasReady = this.state === 'ready';
    this.state = 'closed';
    for (const t of this.timers) clearTimeout(t);
    if (wasReady) this.hooks.onClosed(this, code, reason);
  }
}
