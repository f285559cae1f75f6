/**
 * Protocol violations and the WebSocket close codes that report them. A connection that sends
 * something invalid is closed with one of these codes and a reason; nobody else is affected.
 */
import { FedmedError } from '../errors.js';

export const CloseCode = {
  /** Normal shutdown of the coordinator or the edge. */
  GOING_AWAY: 1001,
  /** Malformed frame, unknown message type, schema violation, wrong round or phase. */
  PROTOCOL_ERROR: 4000,
  /** A frame or payload above the negotiated limits. */
  TOO_LARGE: 4001,
  /** Authentication failed: unknown site, bad signature. */
  AUTH_FAILED: 4002,
  /** The site was revoked by the federation admin. */
  REVOKED: 4003,
  /** No protocol version in common. */
  UNSUPPORTED_VERSION: 4004,
  /** Another connection authenticated as the same site (the older one is closed). */
  REPLACED: 4005,
  /** No heartbeat within the timeout. */
  HEARTBEAT_TIMEOUT: 4008,
} as const;

export type CloseCodeValue = (typeof CloseCode)[keyof typeof CloseCode];

export class ProtocolError extends FedmedError {
  constructor(
    readonly closeCode: CloseCodeValue,
    message: string,
  ) {
    super('PROTOCOL', message);
  }
}
