/**
 * A coordinator stand-in for edge tests that need to misbehave on purpose (tampered manifests,
 * corrupted chunks, cut connections): a real `ws` server on loopback speaking the real
 * protocol through MessageChannel, authenticating with a real Ed25519 key. Tests script what
 * it sends; everything the edge sends is recorded.
 */
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { MessageChannel } from '../../shared/protocol/messageChannel.js';
import { CHALLENGE_DOMAIN, type Message } from '../../shared/protocol/messages.js';
import { generateIdentity, saveIdentity, signMessage, type Identity } from '../../shared/secure/identity.js';
import { EdgeState } from '../../edge-client/federation/edgeState.js';

export class FakeCoordinator {
  readonly identity: Identity = generateIdentity();
  readonly received: Message[] = [];
  channel: MessageChannel | null = null;
  socket: WebSocket | null = null;
  connections = 0;
  onMessage: (m: Message, payload: Buffer) => void = () => {};
  onReady: () => void = () => {};
  private server!: Server;
  private wss!: WebSocketServer;
  url = '';

  async start(): Promise<void> {
    this.server = createServer();
    this.wss = new WebSocketServer({ server: this.server, path: '/v1/edge' });
    this.wss.on('connection', (ws) => {
      this.connections++;
      this.socket = ws;
      const ch = new MessageChannel(ws);
      this.channel = ch;
      ch.onMessage = (m, payload) => {
        this.received.push(m);
        if (m.type === 'hello') return void ch.send({ type: 'challenge', version: 2, nonce: 'bm9uY2U', signature: signMessage(this.identity.privateKey, CHALLENGE_DOMAIN, m.site, 'bm9uY2U') });
        if (m.type === 'auth') {
          void ch.send({ type: 'welcome', site: 'site-a', heartbeatMs: 1000 }).then(() => this.onReady());
          return;
        }
        if (m.type === 'heartbeat') return;
        this.onMessage(m, Buffer.from(payload));
      };
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    const a = this.server.address();
    this.url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  }

  /** Writes an enrolled edge state dir that pins this coordinator's key. */
  enrolEdge(stateDir: string, site = 'site-a'): void {
    const state = new EdgeState(stateDir);
    mkdirSync(stateDir, { recursive: true });
    saveIdentity(state.keyPath, generateIdentity());
    state.saveConfig({ site, coordinator: this.url, coordinatorPublicKey: this.identity.publicKeyB64, enrolledAt: new Date().toISOString() });
  }

  send(m: Message, payload?: Uint8Array): Promise<void> {
    return this.channel!.send(m, payload);
  }

  of<T extends Message['type']>(type: T): Extract<Message, { type: T }>[] {
    return this.received.filter((m) => m.type === type) as Extract<Message, { type: T }>[];
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
