/**
 * The in-memory transport for large simulations: each site-host worker thread talks to the
 * coordinator's thread over one MessagePort, multiplexing its sites' connections. A
 * `MemorySocket` on each end behaves like a WebSocket for the code above it (send, close,
 * 'message' and 'close' events), so the coordinator's sessions and the edges' clients run
 * unchanged — only the bytes skip the kernel's TCP stack. Frames are copied once, into a buffer
 * transferred with the message.
 */
import { EventEmitter } from 'node:events';
import type { MessagePort } from 'node:worker_threads';
import type { ClientSocket } from '../edge-client/federation/edgeClient.js';
import type { EdgeGateway } from '../coordinator/gateway/edgeGateway.js';

/** What travels over a worker's port. */
export type WireMessage =
  | { conn: number; kind: 'open'; site: string }
  | { conn: number; kind: 'frame'; data: Uint8Array }
  | { conn: number; kind: 'close'; code: number; reason: string };

type Post = (m: WireMessage, transfer?: ArrayBuffer[]) => void;

export class MemorySocket extends EventEmitter implements ClientSocket {
  private closed = false;

  constructor(
    private readonly post: Post,
    readonly conn: number,
  ) {
    super();
  }

  send(data: Buffer, cb?: (err?: Error) => void): void {
    if (this.closed) return cb?.(new Error('connection is closed'));
    const copy = new Uint8Array(data); // own buffer, transferred
    this.post({ conn: this.conn, kind: 'frame', data: copy }, [copy.buffer]);
    cb?.();
  }

  close(code = 1000, reason = ''): void {
    if (this.closed) return;
    this.post({ conn: this.conn, kind: 'close', code, reason });
    this.ended(code, reason);
  }

  /** Cuts the connection (as a crash would): the other end sees 1006. */
  terminate(): void {
    if (this.closed) return;
    this.post({ conn: this.conn, kind: 'close', code: 1006, reason: '' });
    this.ended(1006, '');
  }

  /** A message from the other end. */
  deliver(m: WireMessage): void {
    if (this.closed) return;
    if (m.kind === 'frame') this.emit('message', Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength), true);
    else if (m.kind === 'close') this.ended(m.code, m.reason);
  }

  private ended(code: number, reason: string): void {
    this.closed = true;
    setImmediate(() => this.emit('close', code, Buffer.from(reason)));
  }
}

/** Worker side: opens connections for the sites this worker hosts. */
export class MemoryConnector {
  private next = 1;
  private readonly sockets = new Map<number, MemorySocket>();

  constructor(private readonly port: MessagePort) {
    port.on('message', (m: WireMessage) => {
      const s = this.sockets.get(m.conn);
      if (!s) return;
      if (m.kind === 'close') this.sockets.delete(m.conn);
      s.deliver(m);
    });
  }

  connect(site: string): ClientSocket {
    const conn = this.next++;
    const socket = new MemorySocket((m, t) => this.port.postMessage(m, t), conn);
    this.sockets.set(conn, socket);
    socket.on('close', () => this.sockets.delete(conn));
    this.port.postMessage({ conn, kind: 'open', site } satisfies WireMessage);
    setImmediate(() => socket.emit('open'));
    return socket;
  }
}

/** Coordinator side: attaches each opened connection to the running coordinator's gateway. */
export class MemoryHub {
  /** The gateway of the running coordinator (null while it restarts: connections are refused). */
  gateway: EdgeGateway | null = null;
  private readonly ports: MessagePort[] = [];

  addPort(port: MessagePort): void {
    this.ports.push(port);
    const sockets = new Map<number, MemorySocket>();
    port.on('message', (m: WireMessage) => {
      if (m.kind === 'open') {
        const post: Post = (w, t) => port.postMessage(w, t);
        if (!this.gateway) return post({ conn: m.conn, kind: 'close', code: 1013, reason: 'coordinator unavailable' });
        const socket = new MemorySocket(post, m.conn);
        sockets.set(m.conn, socket);
        socket.on('close', () => sockets.delete(m.conn));
        this.gateway.attach(socket, `memory:${m.site}`);
        return;
      }
      sockets.get(m.conn)?.deliver(m);
    });
  }

  close(): void {
    for (const p of this.ports) p.close();
  }
}
