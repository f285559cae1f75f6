/**
 * Observability routes, for any active API token (Authorization: Bearer fma_..., 401 otherwise):
 *   GET /v1/events   Server-Sent Events: the federation's event feed (events/federationEvents.ts)
 *                    as `data: <json>\n\n`, first `{type:"hello", role, at}` with the token's role;
 *                    a comment line every 15 s keeps proxies from cutting the stream.
 *   GET /v1/whoami   `{role, id, name?}` of the token
 *   GET /metrics     Prometheus text format (observability/coordinatorMetrics.ts)
 * The feed is bounded: at most `maxSubscribers` streams (503 beyond), a subscriber whose unsent
 * bytes exceed `maxBufferedBytes` (it reads slower than events come) is disconnected rather than
 * buffered without bound, and a stream whose token was revoked or expired is closed at the next
 * event or heartbeat. Also counts every API request by route pattern and status for /metrics.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ApiTokens } from '../apiTokens.js';
import type { FederationEvent, FederationEvents } from '../events/federationEvents.js';
import type { CoordinatorMetrics } from '../observability/coordinatorMetrics.js';
import { sha256Hex } from '../siteRegistry.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import { ROLES } from '../store/storeSchema.js';
import { bearerToken, roleGuard } from './apiRoutes.js';

export interface EventRouteOptions {
  /** Concurrent /v1/events streams (default 32). */
  maxSubscribers?: number;
  /** Unsent bytes of a stream above which its client is cut (default 1 MiB). */
  maxBufferedBytes?: number;
  /** Comment heartbeat period (default 15 s). */
  heartbeatMs?: number;
}

export interface EventRouteDeps {
  tokens: ApiTokens;
  store: CoordinatorStore;
  events: FederationEvents;
  metrics: CoordinatorMetrics;
}

export const EVENT_DEFAULTS: Required<EventRouteOptions> = { maxSubscribers: 32, maxBufferedBytes: 1024 * 1024, heartbeatMs: 15_000 };

/** Registers the routes and the request counter (before the other routes, so it sees them all). */
export function registerEventRoutes(app: FastifyInstance, d: EventRouteDeps, o: EventRouteOptions = {}): void {
  const limits = { ...EVENT_DEFAULTS, ...o };
  const reader = { preHandler: roleGuard(d.tokens, ROLES) };
  const streams = new Set<() => void>();

  app.addHook('onResponse', async (req, reply) => d.metrics.request(req.method, req.routeOptions.url, reply.statusCode));
  // Open streams end before the server waits for its connections to close.
  app.addHook('preClose', async () => {
    for (const end of [...streams]) end();
  });

  // (no automatic HEAD route: a HEAD request would hold a subscriber's place without a body to read)
  app.get('/v1/events', { ...reader, exposeHeadRoute: false, schema: { description: 'Server-Sent Events: the federation event feed (text/event-stream)', security: [{ bearer: [] }] } }, (req, reply) => {
    if (streams.size >= limits.maxSubscribers) {
      return reply.code(503).header('retry-after', '30').send({ error: 'too_many_subscribers', message: `${limits.maxSubscribers} event streams are open (the limit); close one or retry later` });
    }
    subscribe(req, reply);
  });

  function subscribe(req: FastifyRequest, reply: FastifyReply): void {
    const token = bearerToken(req);
    const role = d.tokens.roleOf(token)!;
    reply.hijack();
    const res = reply.raw;
    // The connection's close ends the stream: a response queued behind another on a pipelined
    // connection never sees its own 'close' (only the socket's current response does), and
    // would hold a subscriber's place and its listener for good after its client left.
    const socket = req.raw.socket;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      streams.delete(end);
      unsubscribe();
      clearInterval(heartbeat);
      socket.off('close', end);
      if (!res.writableEnded && !res.destroyed) res.end();
    };
    /** Writes to the stream unless its token lapsed or its client cannot keep up. */
    const write = (text: string): void => {
      if (ended) return;
      if (!d.tokens.roleOf(token)) return end();
      res.write(text);
      if (res.writableLength > limits.maxBufferedBytes) {
        req.log.warn({ buffered: res.writableLength, limit: limits.maxBufferedBytes }, 'event stream client reads too slowly: disconnected');
        res.destroy();
        end();
      }
    };
    const unsubscribe = d.events.on((e: FederationEvent) => write(`data: ${JSON.stringify(e)}\n\n`));
    const heartbeat = setInterval(() => write(': heartbeat\n\n'), limits.heartbeatMs);
    heartbeat.unref();
    streams.add(end);
    res.on('close', end);
    res.on('error', end);
    socket.once('close', end);
    if (socket.destroyed) return end();
    write(`retry: 5000\ndata: ${JSON.stringify({ type: 'hello', role, at: Date.now() })}\n\n`);
  }

  app.get(
    '/v1/whoami',
    { ...reader, schema: { response: { 200: { type: 'object', properties: { role: { type: 'string' }, id: { type: 'string' }, name: { type: 'string' } } } } } },
    async (req) => {
      const hash = sha256Hex(bearerToken(req)!);
      const t = d.store.data.apiTokens.find((x) => x.sha256 === hash)!;
      return { role: t.role, id: t.id, ...(t.name ? { name: t.name } : {}) };
    },
  );

  app.get('/metrics', { ...reader, schema: { hide: true } }, async (_req, reply) => reply.type(d.metrics.registry.contentType).send(await d.metrics.registry.metrics()));
}
