/**
 * TLS channel binding (RFC 9266 `tls-exporter`): 32 bytes exported from the TLS session with
 * the label "EXPORTER-Channel-Binding" and no context. Both ends of one TLS connection compute
 * the same value; two TLS connections joined by a relay (a man in the middle terminating TLS)
 * do not. The handshake signatures cover it, so a signature made on one connection is useless
 * on another. Plain TCP (loopback, or `--insecure-transport`) has no binding: "none".
 * RFC 9266 requires TLS 1.3 (or 1.2 with extended master secret): the coordinator and the edge
 * speak TLS 1.3 only, and a binding on an older version is refused. (Under TLS 1.3 an empty
 * context is the same as none.)
 */
import { TLSSocket } from 'node:tls';

export const NO_CHANNEL_BINDING = 'none';

export function tlsChannelBinding(socket: unknown): string {
  if (!(socket instanceof TLSSocket)) return NO_CHANNEL_BINDING;
  if (socket.getProtocol() !== 'TLSv1.3') throw new Error(`TLS channel binding needs TLS 1.3; this connection negotiated ${socket.getProtocol()}`);
  return socket.exportKeyingMaterial(32, 'EXPORTER-Channel-Binding', Buffer.alloc(0)).toString('base64url');
}
