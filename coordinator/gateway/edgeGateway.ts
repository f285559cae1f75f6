/**
 * The WebSocket endpoint edges connect to (`/v1/edge` on the API's port): accepts sockets,
 * runs one EdgeSession each, keeps the authenticated session per site (a newer one replaces an
 * older one), and routes round messages to the round engine.
 *
 * Before a connection authenticates it is held to the pre-authentication limits of
 * coordinator/limits.ts: caps on unauthenticated connections in total and per remote address
 * (above them a new connection is closed with 1013 "try again later" naming the limit), a byte
 * budget counted on the raw socket (so nothing large is buffered for an unknown peer), single
 * small frames only, and the auth timeout. A connection closed before authenticating is cut
 * after a short grace if the peer does not finish the close handshake.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { NO_CHANNEL_BINDING, tlsChannelBinding } from '../../shared/protocol/channelBinding.js';
import { DEFAULT_CHANNEL_LIMITS, type ChannelLimits, type FrameSocket } from '../../shared/protocol/messageChannel.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { CloseCode } from '../../shared/protocol/protocolError.js';
import type { SiteRegistry } from '../siteRegistry.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import { EdgeSession, type SessionTimeouts } from './edgeSession.js';

/** WebSocket close code 1013 (RFC 6455 registry): try again later — a connection cap was reached. */
export const CLOSE_TRY_AGAIN_LATER = 1013;

/** What the gateway enforces before authentication (see coordinator/limits.ts). */
export interface PreAuthLimits {
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  preAuthFrameBytes: number;
  preAuthBytes: number;
}

const NO_PRE_AUTH_LIMITS: PreAuthLimits = { maxUnauthenticated: Infinity, maxUnauthenticatedPerAddress: Infinity, preAuthFrameBytes: 64 * 1024, preAuthBytes: Infinity };

/** Grace for the peer to answer our close frame before an unauthenticated socket is cut. */
const PRE_AUTH_CLOSE_GRACE_MS = 1000;

export const EDGE_PATH = '/v1/edge';

export interface GatewayEvents {
  onMessage(site: string, message: Message, payload: Buffer): void;
  onDisconnect(site: string, reason: string): void;
  onConnect(site: string): void;
}

type Log = { info(o: object, msg: string): void; warn(o: object, msg: string): void };

export class EdgeGateway {
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, EdgeSession>();
  private readonly all = new Set<EdgeSession>();
  /** Unauthenticated WebSocket connections (from upgrade to auth or close), in total and per address. */
  private unauthenticated = 0;
  private readonly unauthenticatedBy = new Map<string, number>();
  /** Rounds: every message that is not a `model_*` one. */
  events: GatewayEvents = { onMessage: () => {}, onDisconnect: () => {}, onConnect: () => {} };
  /** Model OTA: `model_*` messages, connects and disconnects. */
  modelEvents: GatewayEvents = { onMessage: () => {}, onDisconnect: () => {}, onConnect: () => {} };
  /** CKKS keys and encrypted model chains: `ckks_*` messages. */
  onCkksMessage: (site: string, message: Message, payload: Buffer) => void = () => {};
  /** Audit anchoring: a site's signed audit chain head (`audit_head`; coordinator/audit/auditAnchoring.ts). */
  onAuditHead: (site: string, message: MessageOf<'audit_head'>) => void = () => {};
  /** Readiness: a site's labelled-example counts as its policy releases them (`data_status`; coordinator/siteReadiness.ts). */
  onDataStatus: (site: string, message: MessageOf<'data_status'>) => void = () => {};
  /** Told when a site's authenticated session opens (true) or closes (false): the event feed. Must not throw. */
  onSiteSession: (site: string, online: boolean) => void = () => {};
  /** Bytes of connections already closed (traffic() adds the open ones). */
  private readonly closedTraffic = { sent: 0, received: 0 };

  constructor(
    server: Server,
    private readonly sites: SiteRegistry,
    private readonly federation: CoordinatorFederation,
    private readonly log: Log,
    private readonly limits: ChannelLimits = DEFAULT_CHANNEL_LIMITS,
    private readonly timeouts: SessionTimeouts = { authMs: 10_000, heartbeatMs: 5_000, idleMs: 60_000 },
    private readonly preAuth: PreAuthLimits = NO_PRE_AUTH_LIMITS,
  ) {
    // maxPayload bounds a single WebSocket message before ws allocates it.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: limits.maxHeaderBytes + limits.maxPayloadBytes + 4, perMessageDeflate: false });
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (new URL(req.url ?? '/', 'http://x').pathname !== EDGE_PATH) {
        socket.destroy();
        return;
      }
      // The binding is read off the TLS socket the upgrade arrived on (RFC 9266 tls-exporter).
      let binding: string;
      try {
        binding = tlsChannelBinding(req.socket);
      } catch {
        socket.destroy(); // (TLS below 1.3: the server does not negotiate it; never bind without it)
        return;
      }
      const address = req.socket.remoteAddress ?? 'unknown';
      const refusal = this.capReached(address);
      if (refusal) {
        this.log.warn({ remote: address }, `edge connection refused: ${refusal}`);
        this.wss.handleUpgrade(req, socket, head, (ws) => {
          ws.on('error', () => {});
          ws.close(CLOSE_TRY_AGAIN_LATER, refusal.slice(0, 120));
          socket.pause(); // (nothing more is read from it)
          setTimeout(() => ws.terminate(), PRE_AUTH_CLOSE_GRACE_MS).unref();
        });
        return;
      }
      // Counted from the upgrade on (a socket that dies during it is uncounted on close).
      let counted = true;
      this.unauthenticated++;
      this.unauthenticatedBy.set(address, (this.unauthenticatedBy.get(address) ?? 0) + 1);
      const uncount = (): void => {
        if (!counted) return;
        counted = false;
        this.unauthenticated--;
        const n = (this.unauthenticatedBy.get(address) ?? 1) - 1;
        if (n > 0) this.unauthenticatedBy.set(address, n);
        else this.unauthenticatedBy.delete(address);
      };
      socket.once('close', uncount);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, binding, socket, uncount));
    });
  }

  /** Sites with an authenticated session. */
  readySites(): string[] {
    return [...this.sessions.values()].filter((s) => s.ready && !this.sites.find(s.site!)?.revokedAt).map((s) => s.site!);
  }

  isOnline(site: string): boolean {
    return this.sessions.get(site)?.ready ?? false;
  }

  send(site: string, message: Message, payload?: Uint8Array): Promise<void> {
    const s = this.sessions.get(site);
    if (!s?.ready) return Promise.reject(new Error(`site "${site}" is not connected`));
    return s.send(message, payload);
  }

  /** Sends frames encoded once with encodeMessage() (the same model to many sites). */
  sendEncoded(site: string, frames: Buffer[]): Promise<void> {
    const s = this.sessions.get(site);
    if (!s?.ready) return Promise.reject(new Error(`site "${site}" is not connected`));
    return s.channel.sendEncoded(frames);
  }

  get chunkBytes(): number {
    return this.limits.chunkBytes;
  }

  /** Closes a site's session with a code and reason (e.g. revoked, or a protocol violation). */
  disconnect(site: string, code: number, reason: string): void {
    this.sessions.get(site)?.close(code, reason);
  }

  /** Bytes sent and received over every edge connection since start (authenticated or not). */
  traffic(): { sent: number; received: number } {
    const t = { ...this.closedTraffic };
    for (const s of this.all) {
      t.sent += s.channel.bytesSent;
      t.received += s.channel.bytesReceived;
    }
    return t;
  }

  bytes(site: string): { sent: number; received: number } {
    const c = this.sessions.get(site)?.channel;
    return { sent: c?.bytesSent ?? 0, received: c?.bytesReceived ?? 0 };
  }

  /** Closes every connection with "going away" (graceful shutdown). */
  async close(reason: string): Promise<void> {
    for (const s of this.all) s.close(CloseCode.GOING_AWAY, reason);
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  /** Sends a newer revocation list to every connected site. */
  broadcastRevocations(list: Message & { type: 'revocations' }): void {
    for (const s of this.sessions.values()) if (s.ready) void s.send(list).catch(() => {});
  }

  /** Why a new unauthenticated connection from `address` is refused, or null. */
  private capReached(address: string): string | null {
    if (this.unauthenticated >= this.preAuth.maxUnauthenticated) return `too many unauthenticated connections (limit ${this.preAuth.maxUnauthenticated}, --max-unauthenticated); try again later`;
    if ((this.unauthenticatedBy.get(address) ?? 0) >= this.preAuth.maxUnauthenticatedPerAddress) return `too many unauthenticated connections from ${address} (limit ${this.preAuth.maxUnauthenticatedPerAddress}, --max-unauthenticated-per-address)`;
    return null;
  }

  private accept(ws: WebSocket, req: IncomingMessage, binding: string, raw: Duplex, uncount: () => void): void {
    const remote = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    ws.on('error', (err) => this.log.warn({ remote, err: err.message }, 'edge socket error'));
    const session = this.attach(ws, remote, binding);
    // The byte budget before authentication, counted as bytes arrive (before ws buffers a frame).
    let received = 0;
    const count = (chunk: Buffer): void => {
      if (session.ready) {
        raw.off('data', count);
        return;
      }
      received += chunk.length;
      if (received <= this.preAuth.preAuthBytes) return;
      if (!session.channel.isClosed) {
        this.log.warn({ remote }, `edge connection closed: sent more than ${this.preAuth.preAuthBytes} bytes before authenticating`);
        session.close(CloseCode.TOO_LARGE, `more than ${this.preAuth.preAuthBytes} bytes before authentication (limit --pre-auth-bytes)`);
      } else if (received > this.preAuth.preAuthBytes + 1024 * 1024) ws.terminate(); // (still read after our close: cut)
    };
    raw.on('data', count);
    session.channel.onLocalClose = () => {
      if (session.ready) return;
      // Read no more from a peer refused before authenticating: our close frame still goes out
      // (so it learns the code and reason), and the socket is cut after a short grace.
      raw.pause();
      setTimeout(() => ws.terminate(), PRE_AUTH_CLOSE_GRACE_MS).unref();
    };
    session.onAuthenticated = () => {
      uncount();
      raw.off('data', count);
    };
  }

  /**
   * Runs a session on an already-open frame socket: a WebSocket, or the simulator's in-memory
   * transport (which reaches the same sessions, authentication and round code).
   */
  attach(socket: FrameSocket, remote: string, binding = NO_CHANNEL_BINDING): EdgeSession {
    const session = new EdgeSession(
      socket,
      { ...this.limits, preAuthFrameBytes: this.preAuth.preAuthFrameBytes },
      {
        findSite: (name) => this.sites.find(name),
        credentials: () => {
          const certificate = this.federation.certificate;
          return certificate ? { key: this.federation.signingKey, certificate, revocations: this.federation.trust?.revocations ?? null } : null;
        },
        revokedCertificate: (site) => (site.certificate && this.federation.trust?.isRevoked(site.certificate.body.serial) ? `site "${site.name}" is revoked by the federation admin (certificate ${site.certificate.body.serial})` : null),
        log: this.log,
        onReady: (s) => {
          s.onAuthenticated();
          const previous = this.sessions.get(s.site!);
          if (previous && previous !== s) previous.close(CloseCode.REPLACED, 'a newer connection authenticated as this site');
          this.sessions.set(s.site!, s);
          this.events.onConnect(s.site!);
          this.modelEvents.onConnect(s.site!);
          this.onSiteSession(s.site!, true);
        },
        onMessage: (s, m, p) => {
          if (m.type === 'audit_head') return this.onAuditHead(s.site!, m);
          if (m.type === 'data_status') return this.onDataStatus(s.site!, m);
          if (m.type.startsWith('ckks_')) return this.onCkksMessage(s.site!, m, p);
          (m.type.startsWith('model_') ? this.modelEvents : this.events).onMessage(s.site!, m, p);
        },
        onClosed: (s, code, reason) => {
          if (this.sessions.get(s.site!) === s) {
            this.sessions.delete(s.site!);
            const why = `connection closed (${code}${reason ? `: ${reason}` : ''})`;
            this.events.onDisconnect(s.site!, why);
            this.modelEvents.onDisconnect(s.site!, why);
            this.onSiteSession(s.site!, false);
          }
        },
      },
      this.timeouts,
      remote,
      binding,
    );
    this.all.add(session);
    socket.on('close', () => {
      if (!this.all.delete(session)) return;
      this.closedTraffic.sent += session.channel.bytesSent;
      this.closedTraffic.received += session.channel.bytesReceived;
    });
    return session;
  }
}
