/**
 * A coordinator stand-in for edge tests and the adversarial suite: a real `ws` server on
 * loopback (optionally over TLS) speaking the real protocol through MessageChannel, with a real
 * Ed25519 key. By default it is the federation's certified coordinator (the test holds the
 * federation admin key and certifies it) and runs an honest handshake bound to the connection;
 * tests script everything else it sends — and can make it lie: skip the challenge, present a
 * certificate of another admin, sign for the wrong channel. Everything the edge sends is
 * recorded. It also answers `GET /v1/federation` and `POST /v1/enroll`, so `fedmed edge enroll`
 * can be pointed at it.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { WebSocketServer, type WebSocket } from 'ws';
import { tlsChannelBinding } from '../../shared/protocol/channelBinding.js';
import { MessageChannel } from '../../shared/protocol/messageChannel.js';
import { CHALLENGE_DOMAIN, type Message } from '../../shared/protocol/messages.js';
import { generateIdentity, saveIdentity, signMessage, type Identity } from '../../shared/secure/identity.js';
import { generateEncryptionKey, saveEncryptionKey, type SiteEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import { ephemeralAdminKey, type AdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueCoordinatorCertificate, issueSiteCertificate } from '../../shared/secure/trust/adminSigning.js';
import type { CoordinatorCertificate, RevocationList, SiteCertificate } from '../../shared/secure/trust/certificates.js';
import { signEnrolmentReceipt } from '../../shared/secure/trust/enrolmentReceipt.js';
import { EdgeState, SITE_CONFIG_FORMAT } from '../../edge-client/federation/edgeState.js';

/** How the fake answers a hello (default: an honest, certified, channel-bound challenge). */
export type HandshakeScript = (m: Extract<Message, { type: 'hello' }>, ch: MessageChannel, binding: string) => void;

export interface EnrolledFakeSite {
  site: string;
  identity: Identity;
  encryption: SiteEncryptionKey;
  certificate: SiteCertificate;
}

export class FakeCoordinator {
  /** The federation admin key (the test is the admin). */
  readonly admin: AdminKey;
  /** The coordinator's key, and the certificate the admin issues it in start(). */
  identity: Identity = generateIdentity();
  certificate!: CoordinatorCertificate;
  revocations: RevocationList | null = null;
  readonly received: Message[] = [];
  /** Every message with the site whose connection it came on (after its hello). */
  readonly receivedFrom: { site: string; m: Message; payload: Buffer }[] = [];
  /** The latest connection of each site (after its hello). */
  readonly channels = new Map<string, MessageChannel>();
  channel: MessageChannel | null = null;
  socket: WebSocket | null = null;
  connections = 0;
  onMessage: (m: Message, payload: Buffer, site: string) => void = () => {};
  onReady: (site: string) => void = () => {};
  /** Replace to misbehave during the handshake. */
  onHello: HandshakeScript = (m, ch, binding) => this.honestChallenge(m, ch, binding);
  /** Answers an auth (default: welcome the site). */
  onAuth: (site: string, ch: MessageChannel) => void = (site, ch) => void ch.send({ type: 'welcome', site, heartbeatMs: 1000 }).then(() => this.onReady(site));
  /** Enrolment answers (`POST /v1/enroll`): site name per join-token secret. */
  readonly joinTokens = new Map<string, string>();
  readonly enrolled: { site: string; publicKey: string; encryptionKey: string }[] = [];
  /** The admin's certificates of the edges enrolled with enrolEdge(). */
  readonly siteCertificates = new Map<string, SiteCertificate>();
  private server!: Server;
  private wss!: WebSocketServer;
  private readonly nonce = 'bm9uY2UtZm9yLXRlc3Rz';
  url = '';

  constructor(o: { admin?: AdminKey } = {}) {
    this.admin = o.admin ?? ephemeralAdminKey();
  }

  /** Starts on a free loopback port; with `tls`, serves https/wss with that certificate. */
  async start(o: { tls?: { cert: Buffer; key: Buffer }; certify?: boolean } = {}): Promise<void> {
    this.server = o.tls ? createHttpsServer({ cert: o.tls.cert, key: o.tls.key }, (q, r) => this.http(q, r)) : createServer((q, r) => this.http(q, r));
    this.wss = new WebSocketServer({ noServer: true });
    this.server.on('upgrade', (req, socket, head) => {
      const binding = tlsChannelBinding(req.socket);
      this.wss.handleUpgrade(req, socket, head, (ws) => this.accept(ws, binding));
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    this.url = `${o.tls ? 'https' : 'http'}://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
    if (o.certify !== false) this.certificate = issueCoordinatorCertificate(this.admin, { publicKey: this.identity.publicKeyB64, urls: [this.url] });
  }

  private accept(ws: WebSocket, binding: string): void {
    this.connections++;
    this.socket = ws;
    const ch = new MessageChannel(ws);
    this.channel = ch;
    let site = '';
    ch.onMessage = (m, payload) => {
      this.received.push(m);
      if (m.type === 'hello') {
        site = m.site;
        this.channels.set(site, ch);
        return this.onHello(m, ch, binding);
      }
      this.receivedFrom.push({ site, m, payload: Buffer.from(payload) });
      if (m.type === 'auth') {
        // A live coordinator beats: an edge gives up on a silent one after a few heartbeat periods.
        const beat = setInterval(() => void ch.send({ type: 'heartbeat', t: Date.now() }).catch(() => {}), 500).unref();
        ws.on('close', () => clearInterval(beat));
        return this.onAuth(site, ch);
      }
      if (m.type === 'heartbeat') return;
      this.onMessage(m, Buffer.from(payload), site);
    };
    ws.on('error', () => {});
  }

  /** What a certified coordinator sends: its certificate and a signature bound to this connection. */
  honestChallenge(m: { site: string }, ch: MessageChannel, binding: string, o: { certificate?: CoordinatorCertificate; key?: Identity } = {}): void {
    const key = o.key ?? this.identity;
    void ch.send({ type: 'challenge', version: 4, nonce: this.nonce, signature: signMessage(key.privateKey, CHALLENGE_DOMAIN, m.site, this.nonce, binding), certificate: o.certificate ?? this.certificate, ...(this.revocations ? { revocations: this.revocations } : {}) });
  }

  /** An enrolled edge state dir for this federation (as `edge enroll` leaves it), and the admin's certificate of its keys. */
  enrolEdge(stateDir: string, site = 'site-a'): EnrolledFakeSite {
    const state = new EdgeState(stateDir);
    mkdirSync(stateDir, { recursive: true, mode: 0o700 });
    const identity = generateIdentity();
    const encryption = generateEncryptionKey();
    saveIdentity(state.keyPath, identity);
    saveEncryptionKey(state.encryptionKeyPath, encryption);
    state.saveConfig({ format: SITE_CONFIG_FORMAT, site, coordinator: this.url, adminPublicKey: this.admin.publicKeyB64, enrolledAt: new Date().toISOString() });
    const certificate = issueSiteCertificate(this.admin, { site, identityKey: identity.publicKeyB64, encryptionKey: encryption.publicB64 });
    this.siteCertificates.set(site, certificate);
    return { site, identity, encryption, certificate };
  }

  /** A certified site that exists only in the test (a colluder, or the honest peer it plays). */
  certifiedPeer(site: string): EnrolledFakeSite {
    const identity = generateIdentity();
    const encryption = generateEncryptionKey();
    return { site, identity, encryption, certificate: issueSiteCertificate(this.admin, { site, identityKey: identity.publicKeyB64, encryptionKey: encryption.publicB64 }) };
  }

  /** Serves GET /v1/federation and POST /v1/enroll (replace to script other answers). */
  http(req: IncomingMessage, res: ServerResponse): void {
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && req.url === '/v1/federation') {
      return reply(200, { adminPublicKey: this.admin.publicKeyB64, coordinatorPublicKey: this.identity.publicKeyB64, coordinatorCertificate: this.certificate ?? null, revocations: this.revocations, nextCoordinatorPublicKey: null });
    }
    if (req.method === 'POST' && req.url === '/v1/enroll') {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const b = JSON.parse(body) as { token: string; publicKey: string; encryptionKey: string };
        this.received.push({ type: 'enroll', ...b } as unknown as Message);
        const site = this.joinTokens.get(b.token);
        if (!site) return reply(401, { message: 'unknown join token' });
        this.enrolled.push({ site, publicKey: b.publicKey, encryptionKey: b.encryptionKey });
        reply(200, { site, receipt: signEnrolmentReceipt(this.identity.privateKey, { site, identityKey: b.publicKey, encryptionKey: b.encryptionKey }) });
      });
      return;
    }
    reply(404, { message: 'not found' });
  }

  send(m: Message, payload?: Uint8Array): Promise<void> {
    return this.channel!.send(m, payload);
  }

  /** Sends to one site's latest connection. */
  sendTo(site: string, m: Message, payload?: Uint8Array): Promise<void> {
    const ch = this.channels.get(site);
    if (!ch) return Promise.reject(new Error(`${site} is not connected`));
    return ch.send(m, payload);
  }

  of<T extends Message['type']>(type: T, site?: string): Extract<Message, { type: T }>[] {
    if (site !== undefined) return this.receivedFrom.filter((r) => r.site === site && r.m.type === type).map((r) => r.m) as Extract<Message, { type: T }>[];
    return this.received.filter((m) => m.type === type) as Extract<Message, { type: T }>[];
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    this.server.closeAllConnections?.();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
