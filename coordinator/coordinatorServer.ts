/**
 * The coordinator process: fastify (REST API, OpenAPI at /docs/json, pino logs) and the edge
 * WebSocket endpoint on the same port, over https/wss when given a certificate. Opens the store,
 * aborts rounds a previous run left open, and shuts down gracefully (sockets closed with a
 * reason, pending writes finished).
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import rateLimit from '@fastify/rate-limit';
import { UsageError } from '../shared/errors.js';
import { ApiTokens } from './apiTokens.js';
import { registerApiRoutes } from './api/apiRoutes.js';
import { registerDashboardRoutes } from './api/dashboardRoutes.js';
import { CoordinatorKeys } from './coordinatorIdentity.js';
import { CoordinatorFederation } from './federation/coordinatorFederation.js';
import { announceRevocations } from './api/federationRoutes.js';
import { EdgeGateway } from './gateway/edgeGateway.js';
import { RoundEngine } from './rounds/roundEngine.js';
import { Deployment } from './ota/deployment.js';
import { OtaPublisher } from './ota/otaPublisher.js';
import { SiteRegistry } from './siteRegistry.js';
import { SiteReadiness } from './siteReadiness.js';
import { CoordinatorStore } from './store/coordinatorStore.js';
import { coordinatorLimits, httpServerOptions, credentialRoute, type CoordinatorLimits } from './limits.js';
import { acquireDataDirLock, releaseDataDirLock } from './store/dataDirLock.js';
import { CkksKeySets } from './ckks/ckksKeySets.js';
import { CkksService } from './ckks/ckksService.js';
import { FederationEvents } from './events/federationEvents.js';
import { connectEventSources } from './events/eventSources.js';
import { CoordinatorMetrics } from './observability/coordinatorMetrics.js';
import { registerEventRoutes, type EventRouteOptions } from './api/eventRoutes.js';
import { AuditLog } from '../shared/audit/auditLog.js';
import { connectAuditSources } from './audit/auditSources.js';
import { registerAuditRoutes } from './audit/auditRoutes.js';
import { recordCoordinatorStart } from './audit/auditStart.js';
import { AuditAnchoring, type AnchoringOptions } from './audit/auditAnchoring.js';

export interface CoordinatorOptions {
  dataDir: string;
  /** PostgreSQL URL for the records (default: SQLite in DATA_DIR; store/coordinatorStore.ts). */
  database?: string;
  host?: string;
  port?: number;
  tlsCert?: string;
  tlsKey?: string;
  /** pino level; 'silent' in tests. */
  logLevel?: string;
  /** Limits on clients (coordinator/limits.ts); anything not given has its default. */
  limits?: Parameters<typeof coordinatorLimits>[0];
  heartbeatMs?: number;
  /** Size of the chunks a model update is sent in (default 256 KiB). */
  otaChunkBytes?: number;
  /** Limits of the event feed, GET /v1/events (api/eventRoutes.ts). */
  eventStreams?: EventRouteOptions;
  /** How often the signed audit chain head is re-sent to the sites (coordinator/audit/auditAnchoring.ts). */
  auditAnchoring?: AnchoringOptions;
}

export interface RunningCoordinator {
  app: FastifyInstance;
  federation: CoordinatorFederation;
  url: string;
  adminToken: string;
  store: CoordinatorStore;
  sites: SiteRegistry;
  rounds: RoundEngine;
  gateway: EdgeGateway;
  deployment: Deployment;
  ota: OtaPublisher;
  /** The event feed (GET /v1/events) and the metrics (GET /metrics). */
  events: FederationEvents;
  /** The hash-chained audit log (DATA_DIR/audit.jsonl, GET /v1/audit). */
  audit: AuditLog;
  metrics: CoordinatorMetrics;
  close(reason?: string): Promise<void>;
}

export async function startCoordinator(o: CoordinatorOptions): Promise<RunningCoordinator> {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new UsageError('give both --tls-cert and --tls-key, or neither');
  // The lock first: a second coordinator on the same data dir must not even migrate the store.
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 });
  acquireDataDirLock(o.dataDir);
  let store: CoordinatorStore;
  try {
    store = await CoordinatorStore.open(o.dataDir, { database: o.database });
  } catch (err) {
    releaseDataDirLock(o.dataDir);
    throw err;
  }
  const federation = new CoordinatorFederation(store, new CoordinatorKeys(o.dataDir));
  // TLS 1.3 only: the handshake's channel binding (RFC 9266 tls-exporter) is sound under TLS 1.3.
  const limits: CoordinatorLimits = coordinatorLimits(o.limits);
  const serverOptions = httpServerOptions(limits.requestTimeoutMs); // (the request timeout is enforced only if given here)
  const https = o.tlsCert ? { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey!), minVersion: 'TLSv1.3' as const, ...serverOptions } : null;
  const app = Fastify({
    logger: { level: o.logLevel ?? 'info' },
    bodyLimit: limits.bodyLimitBytes,
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.connectionTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    ...(https ? { https } : { http: serverOptions }),
    // Unknown fields in a request body are an error (fastify's default silently drops them,
    // which would hide a researcher's typo in an experiment config).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
  });
  app.server.maxConnections = limits.maxConnections;
  let dropsLogged = 0;
  app.server.on('drop', (d?: { remoteAddress?: string }) => {
    if (dropsLogged++ % 100 === 0) app.log.warn({ remote: d?.remoteAddress, dropped: dropsLogged }, `connection dropped: ${limits.maxConnections} connections open (limit --max-connections)`);
  });
  await app.register(rateLimit, { global: false });
  registerCredentialRouteLimits(app, limits);
  await app.register(swagger, { openapi: { info: { title: 'fedmed coordinator API', version: '1' }, components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } } });
  const sites = new SiteRegistry(store, () => federation.adminFingerprint);
  const tokens = new ApiTokens(store);
  const tokensBefore = new Set(store.data.apiTokens.map((t) => t.id));
  const adminToken = await tokens.ensureAdminToken();
  const heartbeatMs = o.heartbeatMs ?? 5000;
  const channel = { maxHeaderBytes: limits.maxHeaderBytes, maxPayloadBytes: limits.maxPayloadBytes, chunkBytes: limits.chunkBytes, maxTransferBytes: limits.maxTransferBytes };
  const gateway = new EdgeGateway(app.server as Server, sites, federation, app.log, channel, { authMs: limits.authTimeoutMs, heartbeatMs, idleMs: Math.max(12 * heartbeatMs, 30_000) }, limits);
  const keySets = new CkksKeySets(store, federation);
  const ckks = new CkksService(store, keySets, gateway, app.log);
  gateway.onCkksMessage = (site, m) => ckks.onMessage(site, m);
  federation.onRevocations = (list, revoked) => announceRevocations(gateway, list, revoked);
  const rounds = new RoundEngine(store, gateway, federation, app.log);
  app.log.info({ store: store.location }, 'store opened'); // (a database URL without its password)
  const aborted = await rounds.recover();
  // Deployment changes are offered to the affected sites (the callback runs only after setup).
  const deployment = new Deployment(store, (changed) => publisher.offer(changed));
  const publisher = new OtaPublisher(store, gateway, federation, deployment, app.log, o.otaChunkBytes);
  gateway.modelEvents = { onConnect: (s) => publisher.onConnect(s), onDisconnect: (s) => publisher.onDisconnect(s), onMessage: (s, m) => publisher.onMessage(s, m) };
  // A round's new version: deployed as the experiment's `deploy` says (gated, auto or manual; coordinator/ota/deployment.ts).
  rounds.onVersionPublished = (exp, versionId) => void deployment.versionPublished(exp, versionId).catch((err: Error) => app.log.warn({ err: err.message, versionId }, 'deployment of the new version failed'));
  // The event feed and metrics: connected to the parts above, their routes and hooks registered before the API's.
  const events = new FederationEvents(app.log);
  const metrics = new CoordinatorMetrics(events, { sitesOnline: () => gateway.readySites().length, gatewayTraffic: () => gateway.traffic(), otaBytes: () => [...publisher.bytesSent.values()].reduce((a, b) => a + b, 0) });
  const readiness = new SiteReadiness(app.log);
  gateway.onDataStatus = (site, m) => {
    if (readiness.record(site, m)) events.emit({ type: 'site', site, online: true, change: 'data' });
  };
  connectEventSources(events, { app, store, gateway, rounds, deployment, ota: publisher, federation, metrics });
  // The audit log: fed from the event bus and the API's responses (coordinator/audit/).
  const audit = AuditLog.open(o.dataDir, app.log);
  connectAuditSources(audit, { app, store, events, federation, log: app.log });
  // Cross-site anchoring: the signed chain head to the sites, theirs recorded here.
  const anchoring = new AuditAnchoring({ audit, gateway, federation, sites, events, log: app.log }, o.auditAnchoring);
  recordCoordinatorStart(audit, { store, federation, tokensCreated: store.data.apiTokens.filter((t) => !tokensBefore.has(t.id)), roundsAborted: aborted });
  registerEventRoutes(app, { tokens, store, events, metrics }, o.eventStreams);
  registerAuditRoutes(app, { tokens, audit });
  registerApiRoutes(app, { store, sites, tokens, gateway, rounds, deployment, ota: publisher, keySets, federation, readiness });
  registerDashboardRoutes(app); // the dashboard's page and files at / (dist/dashboard)
  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  try {
    await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 8700 });
  } catch (err) {
    // (e.g. the port is in use): nothing keeps the process alive — no open pool, no lock.
    await app.close().catch(() => {});
    await store.close().catch(() => {});
    releaseDataDirLock(o.dataDir);
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const url = `${https ? 'https' : 'http'}://${o.host ?? '127.0.0.1'}:${port}`;
  app.log.info({ url, dataDir: o.dataDir, coordinatorKey: federation.keys.current.publicKeyB64, federation: federation.adminFingerprint, summation: rounds.summation }, 'coordinator listening');
  if (!federation.certificate) app.log.warn({ coordinatorKey: federation.keys.current.publicKeyB64 }, 'this coordinator has no certificate from a federation admin: no site can enrol or connect until the admin runs "fedmed federation certify-coordinator"');
  // A run a crash (or a shutdown) cut short goes on once its sites are back (rounds/roundEngine.ts).
  await rounds.resumeInterruptedRuns(() => gateway.readySites());
  let closing: Promise<void> | null = null;
  return {
    app,
    federation,
    url,
    adminToken,
    store,
    sites,
    rounds,
    gateway,
    deployment,
    ota: publisher,
    events,
    metrics,
    audit,
    close(reason = 'coordinator shutting down') {
      closing ??= (async () => {
        for (const e of store.data.experiments) rounds.stop(e.id, reason, { shutdown: true });
        await gateway.close(reason);
        await rounds.settled(); // the open round's record is written before the store closes
        await app.close();
        await anchoring.close();
        void audit.append({ actor: { kind: 'coordinator' }, action: 'coordinator.stopped', subject: 'coordinator', details: { reason: reason.slice(0, 300) } });
        await audit.close();
        await store.write();
        await store.close();
        releaseDataDirLock(o.dataDir);
      })();
      return closing;
    },
  };
}

/**
 * Body limits and rate limits (@fastify/rate-limit) of the routes that take or mint credentials
 * (coordinator/limits.ts credentialRoute), per remote address and per token (the join token in
 * an enrolment's body, the bearer token elsewhere). What is limited is failed attempts (any 4xx:
 * a guessed or wrong token, a malformed request) plus the attempts still in flight: guessing is
 * bounded, while an admin enrolling a thousand sites (fedmed simulate) is not held up. Once a key
 * has used its allowance, further requests get 429 naming the limit and its flag before anything
 * is parsed. Must be registered before the routes.
 */
function registerCredentialRouteLimits(app: FastifyInstance, limits: CoordinatorLimits): void {
  const tokenKey = (token: string): string => createHash('sha256').update(token).digest('hex').slice(0, 32); // (no secrets kept in memory)
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      const c = credentialRoute(method, route.url, limits);
      if (!c) continue;
      route.bodyLimit ??= c.bodyLimit;
      const window = `${Math.round(c.rate.windowMs / 1000)} s`;
      const keys = [
        { key: (req: FastifyRequest) => (req.ip ? `ip:${req.ip}` : undefined), per: 'from %ip', scope: 'per address' },
        { key: (req: FastifyRequest) => { const t = tokenOf(req, c.tokenFrom); return t === undefined ? undefined : `token:${tokenKey(t)}`; }, per: 'with this token', scope: 'per token' },
      ].map((k) => ({ ...k, failures: app.createRateLimit({ max: c.rate.max, timeWindow: c.rate.windowMs, keyGenerator: (req) => k.key(req) ?? '' }), inflight: new Map<string, number>() }));
      const admitted = Symbol('admitted keys');
      type Tracked = FastifyRequest & { [admitted]?: { inflight: Map<string, number>; key: string }[] };
      const check = async (req: Tracked, reply: FastifyReply) => {
        for (const k of keys) {
          const key = k.key(req);
          if (key === undefined || (req[admitted] ?? []).some((a) => a.inflight === k.inflight)) continue;
          const r = await k.failures(req, { increment: false });
          const used = (r.isAllowed ? 0 : r.max - r.remaining) + (k.inflight.get(key) ?? 0);
          if (used >= c.rate.max) {
            const retry = Math.max(1, r.isAllowed ? 1 : r.ttlInSeconds);
            return reply.code(429).header('retry-after', String(retry)).send({ error: 'rate_limited', message: `too many ${c.what} ${k.per.replace('%ip', req.ip)}: limit ${c.rate.max} failed or pending per ${window} ${k.scope} (${c.flag}); retry in ${retry} s` });
          }
          k.inflight.set(key, (k.inflight.get(key) ?? 0) + 1);
          if (!req[admitted]) {
            req[admitted] = [];
            reply.raw.once('close', () => settle(req, reply.raw));
          }
          req[admitted].push({ inflight: k.inflight, key });
        }
      };
      // Settled when the response is done or the connection dies (a request cut by the request
      // timeout or aborted by its client counts as failed).
      const settle = (req: Tracked, res: FastifyReply['raw']): void => {
        const failed = !res.writableFinished || (res.statusCode >= 400 && res.statusCode !== 429);
        for (const a of req[admitted] ?? []) {
          const n = (a.inflight.get(a.key) ?? 1) - 1;
          if (n > 0) a.inflight.set(a.key, n);
          else a.inflight.delete(a.key);
          if (failed) void keys.find((k) => k.inflight === a.inflight)!.failures(req).catch(() => {});
        }
        req[admitted] = [];
      };
      route.onRequest = [check, ...[route.onRequest ?? []].flat()] as typeof route.onRequest;
      // (the join token is in the body: checked once it is parsed, before validation and the handler)
      route.preValidation = [check, ...[route.preValidation ?? []].flat()] as typeof route.preValidation;
    }
  });
}

function tokenOf(req: FastifyRequest, from: 'body' | 'bearer'): string | undefined {
  if (from === 'body') {
    const token = (req.body as { token?: unknown } | null | undefined)?.token;
    return typeof token === 'string' && token ? token : undefined;
  }
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') && header.length > 7 ? header.slice(7).trim() : undefined;
}
