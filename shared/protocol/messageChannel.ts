/**
 * A message channel over any frame socket (a `ws` WebSocket in production and tests): sends
 * validated messages with optional binary payloads, splitting payloads above `chunkBytes` into
 * `chunk` frames announced by a `chunked` frame that carries the whole payload's SHA-256; the
 * receiver checks every size before allocating, reassembles into a reused buffer, verifies the
 * hash and delivers (message, payload).
 *
 * Any protocol violation closes the socket with a close code and reason (see protocolError.ts)
 * and is reported once through `onError`; it never throws into the socket's event loop.
 *
 * A channel may start restricted (`preAuthFrameBytes`, the coordinator's side before the edge
 * authenticated): only single frames of at most that many bytes, no chunked transfers, until
 * `lift()` is called. The reassembly buffer grows with the bytes that actually arrive, never
 * from what a `chunked` header announces.
 *
 * The payload handed to `onMessage` is valid until the next message arrives: copy it if needed.
 * A payload in a frame buffer of its own is marked releasable (see releasableBuffers.ts): its
 * last user may free it at once.
 */
import { createHash } from 'node:crypto';
import { decodeFrame, encodeFrame, type FrameLimits } from './frameCodec.js';
import { parseMessage, type Message } from './messages.js';
import { CloseCode, ProtocolError, type CloseCodeValue } from './protocolError.js';
import { markReleasable, releaseBuffer } from './releasableBuffers.js';

/** The part of a WebSocket the channel needs. */
export interface FrameSocket {
  send(data: Buffer, cb?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'close', listener: (code: number, reason: Buffer) => void): this;
}

export interface ChannelLimits extends FrameLimits {
  /** Largest reassembled payload accepted. */
  maxTransferBytes: number;
  /** Payloads larger than this are sent in chunks of this size. */
  chunkBytes: number;
}

export const DEFAULT_CHANNEL_LIMITS: ChannelLimits = {
  maxHeaderBytes: 64 * 1024,
  maxPayloadBytes: 4 * 1024 * 1024,
  chunkBytes: 4 * 1024 * 1024,
  maxTransferBytes: 512 * 1024 * 1024,
};

/**
 * Encodes a validated message into its frames: one frame, or a `chunked` announcement (with
 * the payload's SHA-256) followed by `chunk` frames when the payload exceeds `chunkBytes`.
 */
export function encodeMessage(message: Message, payload: Uint8Array | undefined, chunkBytes: number): Buffer[] {
  parseMessage(message); // never put an invalid message on the wire
  const bytes = payload?.byteLength ?? 0;
  if (bytes <= chunkBytes) return [encodeFrame(message, payload)];
  const sha256 = createHash('sha256').update(payload!).digest('hex');
  const chunks = Math.ceil(bytes / chunkBytes);
  const transfer = nextTransferId++;
  const frames = [encodeFrame({ type: 'chunked', transfer, totalBytes: bytes, sha256, chunks, message })];
  for (let i = 0; i < chunks; i++) frames.push(encodeFrame({ type: 'chunk', transfer, index: i }, payload!.subarray(i * chunkBytes, Math.min((i + 1) * chunkBytes, bytes))));
  return frames;
}

let nextTransferId = 1;

interface Transfer {
  id: number;
  message: Message;
  totalBytes: number;
  sha256: string;
  chunks: number;
  next: number;
  received: number;
}

export class MessageChannel {
  onMessage: (message: Message, payload: Buffer) => void = () => {};
  onError: (err: ProtocolError) => void = () => {};
  /** Called when this side closes the connection (before the socket's own close event). */
  onLocalClose: (code: number, reason: string) => void = () => {};
  private transfer: Transfer | null = null;
  private reassembly = Buffer.alloc(0);
  private closed = false;
  /** Bytes sent and received, for reports. */
  bytesSent = 0;
  bytesReceived = 0;

  /** While set: the largest frame accepted, and no chunked transfers (see lift()). */
  private restrictedTo: number | null;

  constructor(
    private readonly socket: FrameSocket,
    private readonly limits: ChannelLimits = DEFAULT_CHANNEL_LIMITS,
    o: { preAuthFrameBytes?: number } = {},
  ) {
    this.restrictedTo = o.preAuthFrameBytes ?? null;
    socket.on('message', (data, isBinary) => this.receive(data, isBinary));
    socket.on('close', () => {
      this.closed = true;
    });
  }

  /** Sends a message (validated against its schema first) with an optional payload. */
  send(message: Message, payload?: Uint8Array): Promise<void> {
    try {
      return this.sendEncoded(encodeMessage(message, payload, this.limits.chunkBytes));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sends frames made by encodeMessage(): lets a sender encode one message once and send it
   * to many channels (the coordinator's broadcast of a global model).
   */
  sendEncoded(frames: Buffer[]): Promise<void> {
    // Settles only once every frame's write has finished or failed (never while the socket may
    // still be reading one of them): the caller may then free the frames (releasableBuffers.ts).
    return Promise.allSettled(frames.map((f) => this.sendFrame(f))).then((results) => {
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw failed.reason;
    });
  }

  close(code: CloseCodeValue | 1000, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.close(code, reason.slice(0, 120)); // close reasons are limited to 123 bytes
    this.onLocalClose(code, reason);
  }

  /** Lifts the pre-authentication restriction: the channel limits apply from now on. */
  lift(): void {
    this.restrictedTo = null;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  private sendFrame(frame: Buffer): Promise<void> {
    if (this.closed) return Promise.reject(new ProtocolError(CloseCode.GOING_AWAY, 'connection is closed'));
    this.bytesSent += frame.length;
    return new Promise((resolve, reject) => this.socket.send(frame, (err) => (err ? reject(err) : resolve())));
  }

  private receive(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    this.bytesReceived += data.length;
    try {
      if (!isBinary) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'text frames are not part of the protocol; send binary frames');
      if (this.restrictedTo !== null && data.length > this.restrictedTo) throw new ProtocolError(CloseCode.TOO_LARGE, `frame of ${data.length} bytes before authentication exceeds the limit of ${this.restrictedTo} (pre-auth frame limit)`);
      const { header, payload } = decodeFrame(data, this.limits);
      markReleasable(data);
      const type = (header as { type?: unknown } | null)?.type;
      if (type === 'chunked') return this.startTransfer(header as Record<string, unknown>, payload);
      if (type === 'chunk') return this.addChunk(header as Record<string, unknown>, payload);
      if (this.transfer) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `"${String(type)}" message in the middle of chunked transfer ${this.transfer.id}`);
      this.onMessage(parseMessage(header), payload);
    } catch (err) {
      const pe = err instanceof ProtocolError ? err : new ProtocolError(CloseCode.PROTOCOL_ERROR, `message handling failed: ${(err as Error).message}`);
      this.close(pe.closeCode, pe.message);
      this.onError(pe);
    }
  }

  private startTransfer(h: Record<string, unknown>, payload: Buffer): void {
    if (this.restrictedTo !== null) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'chunked transfers are accepted only after authentication');
    if (this.transfer) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'a chunked transfer started before the previous one finished');
    const { transfer, totalBytes, sha256, chunks } = h;
    if (!Number.isInteger(transfer) || !Number.isInteger(totalBytes) || !Number.isInteger(chunks) || typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256) || payload.length !== 0) {
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'malformed chunked header');
    }
    const total = totalBytes as number;
    if (total < 1 || total > this.limits.maxTransferBytes) throw new ProtocolError(CloseCode.TOO_LARGE, `chunked payload of ${total} bytes exceeds the limit of ${this.limits.maxTransferBytes}`);
    if ((chunks as number) < 1 || (chunks as number) > Math.ceil(total / 1024) + 1) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `implausible chunk count ${String(chunks)}`);
    const message = parseMessage(h.message);
    this.transfer = { id: transfer as number, message, totalBytes: total, sha256: sha256 as string, chunks: chunks as number, next: 0, received: 0 };
  }

  private addChunk(h: Record<string, unknown>, payload: Buffer): void {
    const t = this.transfer;
    if (!t) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'chunk without a chunked transfer');
    if (h.transfer !== t.id || h.index !== t.next) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `chunk ${String(h.index)} of transfer ${String(h.transfer)} out of order (expected ${t.next} of ${t.id})`);
    if (t.received + payload.length > t.totalBytes) throw new ProtocolError(CloseCode.TOO_LARGE, `chunks exceed the announced ${t.totalBytes} bytes`);
    this.reserve(t, t.received + payload.length);
    payload.copy(this.reassembly, t.received);
    t.received += payload.length;
    releaseBuffer(payload); // copied: the chunk's frame is no longer needed
    t.next++;
    if (t.next < t.chunks) return;
    this.transfer = null;
    if (t.received !== t.totalBytes) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `transfer ended with ${t.received} of ${t.totalBytes} bytes`);
    const whole = this.reassembly.subarray(0, t.totalBytes);
    const actual = createHash('sha256').update(whole).digest('hex');
    if (actual !== t.sha256) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'chunked payload SHA-256 mismatch');
    this.onMessage(t.message, whole);
  }

  /**
   * Makes the reassembly buffer (reused across transfers) hold at least `needed` bytes: it grows
   * by doubling up to the announced total, so memory follows the bytes received, not the header.
   */
  private reserve(t: Transfer, needed: number): void {
    if (this.reassembly.length >= needed) return;
    const grown = Buffer.allocUnsafe(Math.min(t.totalBytes, Math.max(needed, 2 * this.reassembly.length)));
    this.reassembly.copy(grown, 0, 0, t.received);
    this.reassembly = grown;
  }
}
