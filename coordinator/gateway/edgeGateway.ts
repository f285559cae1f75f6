/**
 * The WebSocket endpoint edges connect to (`/v1/edge` on the API's port): accepts sockets,
 * runs one EdgeSession each, keeps the authenticated session per site (a newer one replaces an
 * older one), and routes round messages to the round engine.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { NO_CHANNEL_BINDING, tlsChannelBinding } from '../../shared/protocol/channelBinding.js';
import { DEFAULT_CHANNEL_LIMITS, type ChannelLimits, type FrameSocket } from '../../shared/protocol/messageChannel.js';
import type { Message } from '../../shared/protocol/messages.js';
import { CloseCode } from '../../shared/protocol/protocolError.js';
import type { SiteRegistry } from '../siteRegistry.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import { EdgeSession, type SessionTimeouts } from './edgeSession.js';

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
  /** Rounds: every message that is not a `model_*` one. */
  events: GatewayEvents = { onMessage: () => {}, onDisconnect: () => {}, onConnect: () => {} };
  /** Model OTA: `model_*` messages, connects and disconnects. */
  modelEvents: GatewayEvents = { onMessage: () => {}, onDisconnect: () => {}, onConnect: () => {} };
  /** CKKS keys and encrypted model chains: `ckks_*` messages. */
  onCkksMessage: (site: string, message: Message, payload: Buffer) => void = () => {};

  constructor(
    server: Server,
    private readonly sites: SiteRegistry,
    private readonly federation: CoordinatorFederation,
    private readonly log: Log,
    private readonly limits: ChannelLimits = DEFAULT_CHANNEL_LIMITS,
    private readonly timeouts: SessionTimeouts = { authMs: 10_000, heartbeatMs: 5_000, idleMs: 60_000 },
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
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, req, binding));
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

  private accept(ws: WebSocket, req: IncomingMessage, binding: string): void {
    this.attach(ws, `${req.socket.remoteAddress}:${req.socket.remotePort}`, binding);
    ws.on('error', (err) => this.log.warn({ remote: `${req.socket.remoteAddress}:${req.socket.remotePort}`, err: err.message }, 'edge socket error'));
  }

  /**
   * Runs a session on an already-open frame socket: a WebSocket, or the simulator's in-memory
   * transport (which reaches the same sessions, authentication and round code).
   */
  attach(socket: FrameSocket, remote: string, binding = NO_CHANNEL_BINDING): void {
    const session = new EdgeSession(
      socket,
      this.limits,
      {
        findSite: (name) => this.sites.find(name),
        credentials: () => {
          const certificate = this.federation.certificate;
          return certificate ? { key: this.federation.signingKey, certificate, revocations: this.federation.trust?.revocations ?? null } : null;
        },
        revokedCertificate: (site) => (site.certificate && this.federation.trust?.isRevoked(site.certificate.body.serial) ? `site "${site.name}" is revoked by the federation admin (certificate ${site.certificate.body.serial})` : null),
        log: this.log,
        onReady: (s) => {
          const previous = this.sessions.get(s.site!);
          if (previous && previous !== s) previous.close(CloseCode.REPLACED, 'a newer connection authenticated as this site');
          this.sessions.set(s.site!, s);
          this.events.onConnect(s.site!);
          this.modelEvents.onConnect(s.site!);
        },
        onMessage: (s, m, p) => {
          if (m.type.startsWith('ckks_')) return this.onCkksMessage(s.site!, m, p);
          (m.type.startsWith('model_') ? this.modelEvents : this.events).onMessage(s.site!, m, p);
        },
        onClosed: (s, code, reason) => {
          if (this.sessions.get(s.site!) === s) {
            this.sessions.delete(s.site!);
            const why = `connection closed (${code}${reason ? `: ${reason}` : ''})`;
            this.events.onDisconnect(s.site!, why);
            this.modelEvents.onDisconnect(s.site!, why);
          }
        },
      },
      this.timeouts,
      remote,
      binding,
    );
    this.all.add(session);
    socket.on('close', () => this.all.delete(session));
  }
}
