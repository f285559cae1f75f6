/**
 * Every limit the coordinator enforces on its clients, in one place, with its default and the
 * `fedmed coordinator start` flag that changes it (README, Federation > Limits).
 *
 * Before authentication an edge WebSocket may only say `hello` and `auth`: single small frames,
 * a small byte budget in all, no chunked transfers, a deadline; unauthenticated connections are
 * capped in total and per remote address. After authentication the channel limits apply (frame
 * header and payload, reassembled transfer). The HTTP side has request, idle and keep-alive
 * timeouts, a connection cap (TCP and WebSocket together), per-route body limits and rate limits
 * on the routes that take or mint credentials (counting failed and in-flight attempts, so that
 * guessing a token is bounded while an admin may still enrol a thousand sites in a minute).
 */
import type { ChannelLimits } from '../shared/protocol/messageChannel.js';

export interface RateLimit {
  /** Failed (4xx, cut or aborted) plus in-flight requests allowed per window and key (address or token). */
  max: number;
  windowMs: number;
}

export interface CoordinatorLimits extends ChannelLimits {
  // --- edge WebSocket before authentication ---
  /** Time from connect to a completed `auth` (--auth-timeout-ms). */
  authTimeoutMs: number;
  /** Unauthenticated WebSocket connections in total (--max-unauthenticated). */
  maxUnauthenticated: number;
  /** Unauthenticated WebSocket connections per remote address (--max-unauthenticated-per-address). */
  maxUnauthenticatedPerAddress: number;
  /** Largest single frame before authentication (--pre-auth-frame-bytes); chunked transfers are refused. */
  preAuthFrameBytes: number;
  /** Bytes a connection may send in all before it authenticates (--pre-auth-bytes). */
  preAuthBytes: number;
  // --- HTTP (REST API and the WebSocket upgrade) ---
  /** A whole request (headers and body) must arrive within this (--request-timeout-ms). */
  requestTimeoutMs: number;
  /** An HTTP socket idle this long is closed (--connection-timeout-ms). */
  connectionTimeoutMs: number;
  /** An idle keep-alive connection is closed after this (--keep-alive-timeout-ms). */
  keepAliveTimeoutMs: number;
  /** TCP connections in total, HTTP and WebSocket (--max-connections); above it new ones are dropped. */
  maxConnections: number;
  /** Request body limit of routes that set none of their own. */
  bodyLimitBytes: number;
  /** Body limit of POST /v1/enroll. */
  enrollBodyBytes: number;
  /** Body limit of the routes that mint credentials (POST /v1/tokens, POST /v1/sites). */
  tokenBodyBytes: number;
  /** POST /v1/enroll per address, and per join token (--enroll-rate-limit, per --rate-limit-window-ms). */
  enrollRate: RateLimit;
  /** POST /v1/tokens and POST /v1/sites per address, and per bearer token (--token-rate-limit). */
  tokenRate: RateLimit;
}

export const DEFAULT_COORDINATOR_LIMITS: CoordinatorLimits = {
  maxHeaderBytes: 64 * 1024,
  maxPayloadBytes: 4 * 1024 * 1024,
  chunkBytes: 4 * 1024 * 1024,
  maxTransferBytes: 512 * 1024 * 1024,
  authTimeoutMs: 10_000,
  maxUnauthenticated: 64,
  maxUnauthenticatedPerAddress: 8,
  preAuthFrameBytes: 4 * 1024,
  preAuthBytes: 16 * 1024,
  requestTimeoutMs: 30_000,
  connectionTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 2048,
  bodyLimitBytes: 4 * 1024 * 1024,
  enrollBodyBytes: 4 * 1024,
  tokenBodyBytes: 1024,
  enrollRate: { max: 30, windowMs: 60_000 },
  tokenRate: { max: 60, windowMs: 60_000 },
};

/** Fills in defaults; a nested rate limit may be given in part. */
export function coordinatorLimits(given: Partial<Omit<CoordinatorLimits, 'enrollRate' | 'tokenRate'>> & { enrollRate?: Partial<RateLimit>; tokenRate?: Partial<RateLimit> } = {}): CoordinatorLimits {
  const d = DEFAULT_COORDINATOR_LIMITS;
  const defined = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) as Partial<CoordinatorLimits>;
  return {
    ...d,
    ...defined,
    enrollRate: { ...d.enrollRate, ...stripUndefined(given.enrollRate) },
    tokenRate: { ...d.tokenRate, ...stripUndefined(given.tokenRate) },
  };
}

function stripUndefined<T extends object>(o: T | undefined): Partial<T> {
  return o ? (Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>) : {};
}

/** The routes that take or mint credentials: their body limit and rate limit. */
export function credentialRoute(method: string, url: string, l: CoordinatorLimits): { bodyLimit: number; rate: RateLimit; what: string; flag: string; tokenFrom: 'body' | 'bearer' } | null {
  if (method === 'POST' && url === '/v1/enroll') return { bodyLimit: l.enrollBodyBytes, rate: l.enrollRate, what: 'enrolment requests', flag: '--enroll-rate-limit', tokenFrom: 'body' };
  if (method === 'POST' && (url === '/v1/tokens' || url === '/v1/sites')) return { bodyLimit: l.tokenBodyBytes, rate: l.tokenRate, what: `${url} requests`, flag: '--token-rate-limit', tokenFrom: 'bearer' };
  return null;
}

/**
 * Options for node's http/https server that make the request timeout work: node only enforces
 * `requestTimeout` when it is given at construction (setting it afterwards, as fastify does, is
 * silently ignored), needs `headersTimeout` <= it, and checks every `connectionsCheckingInterval`
 * (default 30 s, which would let a request run up to 30 s past a short timeout).
 */
export function httpServerOptions(requestTimeoutMs: number): { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } {
  return {
    requestTimeout: requestTimeoutMs,
    headersTimeout: Math.min(60_000, requestTimeoutMs),
    connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(requestTimeoutMs / 4))),
  };
}
