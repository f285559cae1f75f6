/**
 * Limits of the edge inference service's HTTP server, in one place with their defaults: request,
 * idle and keep-alive timeouts, a connection cap, and a per-address rate limit on POST /v1/infer
 * (@fastify/rate-limit; a refused request gets 429 naming the limit). The body limit stays the
 * service's `bodyLimitBytes` (default 1 MiB).
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';

export interface InferenceLimits {
  /** A whole request (headers and body) must arrive within this. */
  requestTimeoutMs: number;
  /** An idle socket is closed after this. */
  connectionTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  keepAliveTimeoutMs: number;
  /** TCP connections in total; new ones above it are dropped. */
  maxConnections: number;
  /** POST /v1/infer requests per window and remote address. */
  inferPerAddress: { max: number; windowMs: number };
}

export const DEFAULT_INFERENCE_LIMITS: InferenceLimits = {
  requestTimeoutMs: 30_000,
  connectionTimeoutMs: 60_000,
  keepAliveTimeoutMs: 30_000,
  maxConnections: 1024,
  // (high: one PACS gateway or a benchmark sends thousands a second; this bounds a runaway client)
  inferPerAddress: { max: 600_000, windowMs: 60_000 },
};

export function inferenceLimits(given: Partial<InferenceLimits> = {}): InferenceLimits {
  return { ...DEFAULT_INFERENCE_LIMITS, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
}

/**
 * Server options for the `Fastify({...})` call; `node` goes into its `http` or `https` object:
 * node enforces `requestTimeout` only when it is given at construction, and checks it every
 * `connectionsCheckingInterval` (default 30 s).
 */
export function inferenceServerOptions(l: InferenceLimits): { requestTimeout: number; connectionTimeout: number; keepAliveTimeout: number; node: { requestTimeout: number; headersTimeout: number; connectionsCheckingInterval: number } } {
  return {
    requestTimeout: l.requestTimeoutMs,
    connectionTimeout: l.connectionTimeoutMs,
    keepAliveTimeout: l.keepAliveTimeoutMs,
    node: { requestTimeout: l.requestTimeoutMs, headersTimeout: Math.min(60_000, l.requestTimeoutMs), connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(l.requestTimeoutMs / 4))) },
  };
}

/**
 * Registered right after the service is created (before its routes and hooks): the connection
 * cap and the rate limit of /v1/infer, checked before anything else (authentication included).
 */
const register: FastifyPluginAsync<{ limits: InferenceLimits }> = async (app: FastifyInstance, { limits }) => {
  app.server.maxConnections = limits.maxConnections;
  await app.register(rateLimit, { global: false });
  const perAddress = app.createRateLimit({ max: limits.inferPerAddress.max, timeWindow: limits.inferPerAddress.windowMs });
  const window = `${Math.round(limits.inferPerAddress.windowMs / 1000)} s`;
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.url !== '/v1/infer') return;
    const r = await perAddress(req);
    if (!r.isAllowed && r.isExceeded) {
      return reply.code(429).header('retry-after', String(r.ttlInSeconds)).send({ error: 'RATE_LIMITED', message: `too many inference requests from ${req.ip}: limit ${r.max} per ${window} per address; retry in ${r.ttlInSeconds} s` });
    }
  });
};
// (not encapsulated: the hook and the limit apply to the service's own routes)
export const inferenceLimitsPlugin = Object.assign(register, { [Symbol.for('skip-override')]: true });
