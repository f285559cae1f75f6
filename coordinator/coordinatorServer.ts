/**
 * The coordinator process: fastify (REST API, OpenAPI at /docs/json, pino logs) and the edge
 * WebSocket endpoint on the same port, over https/wss when given a certificate. Opens the store,
 * aborts rounds a previous run left open, and shuts down gracefully (sockets closed with a
 * reason, pending writes finished).
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import Fastify, { type FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import { UsageError } from '../shared/errors.js';
import { ApiTokens } from './apiTokens.js';
import { registerApiRoutes } from './api/apiRoutes.js';
import { CoordinatorKeys } from './coordinatorIdentity.js';
import { CoordinatorFederation } from './federation/coordinatorFederation.js';
import { announceRevocations } from './api/federationRoutes.js';
import { EdgeGateway } from './gateway/edgeGateway.js';
import { RoundEngine } from './rounds/roundEngine.js';
import { Deployment } from './ota/deployment.js';
import { OtaPublisher } from './ota/otaPublisher.js';
import { SiteRegistry } from './siteRegistry.js';
import { CoordinatorStore } from './store/coordinatorStore.js';
import { DEFAULT_CHANNEL_LIMITS, type ChannelLimits } from '../shared/protocol/messageChannel.js';
import { acquireDataDirLock, releaseDataDirLock } from './store/dataDirLock.js';
import { CkksKeySets } from './ckks/ckksKeySets.js';
import { CkksService } from './ckks/ckksService.js';

export interface CoordinatorOptions {
  dataDir: string;
  host?: string;
  port?: number;
  tlsCert?: string;
  tlsKey?: string;
  /** pino level; 'silent' in tests. */
  logLevel?: string;
  limits?: Partial<ChannelLimits>;
  heartbeatMs?: number;
  /** Size of the chunks a model update is sent in (default 256 KiB). */
  otaChunkBytes?: number;
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
  close(reason?: string): Promise<void>;
}

export async function startCoordinator(o: CoordinatorOptions): Promise<RunningCoordinator> {
  if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new UsageError('give both --tls-cert and --tls-key, or neither');
  const store = await CoordinatorStore.open(o.dataDir);
  acquireDataDirLock(o.dataDir);
  const federation = new CoordinatorFederation(store, new CoordinatorKeys(o.dataDir));
  // TLS 1.3 only: the handshake's channel binding (RFC 9266 tls-exporter) is sound under TLS 1.3.
  const https = o.tlsCert ? { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey!), minVersion: 'TLSv1.3' as const } : null;
  const app = Fastify({
    logger: { level: o.logLevel ?? 'info' },
    bodyLimit: 4 * 1024 * 1024,
    // Unknown fields in a request body are an error (fastify's default silently drops them,
    // which would hide a researcher's typo in an experiment config).
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false } },
    ...(https ? { https } : {}),
  });
  await app.register(swagger, { openapi: { info: { title: 'fedmed coordinator API', version: '1' }, components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } } });
  const sites = new SiteRegistry(store, () => federation.adminFingerprint);
  const tokens = new ApiTokens(store);
  const adminToken = await tokens.ensureAdminToken();
  const limits = { ...DEFAULT_CHANNEL_LIMITS, ...o.limits };
  const heartbeatMs = o.heartbeatMs ?? 5000;
  const gateway = new EdgeGateway(app.server as Server, sites, federation, app.log, limits, { authMs: 10_000, heartbeatMs, idleMs: Math.max(12 * heartbeatMs, 30_000) });
  const keySets = new CkksKeySets(store, federation);
  const ckks = new CkksService(store, keySets, gateway, app.log);
  gateway.onCkksMessage = (site, m) => ckks.onMessage(site, m);
  federation.onRevocations = (list, revoked) => announceRevocations(gateway, list, revoked);
  const rounds = new RoundEngine(store, gateway, federation, app.log);
  await rounds.recover();
  // Deployment changes are offered to the affected sites (the callback runs only after setup).
  const deployment = new Deployment(store, (changed) => publisher.offer(changed));
  const publisher = new OtaPublisher(store, gateway, federation, deployment, app.log, o.otaChunkBytes);
  gateway.modelEvents = { onConnect: (s) => publisher.onConnect(s), onDisconnect: (s) => publisher.onDisconnect(s), onMessage: (s, m) => publisher.onMessage(s, m) };
  rounds.onVersionPublished = (exp, versionId) => {
    // CKKS versions are encrypted: no coordinator-signed OTA (each site decrypts its own copy).
    if ((exp.config.deploy ?? 'auto') === 'auto' && (exp.config.security ?? 'plain') !== 'ckks') void deployment.publish(versionId).catch((err: Error) => app.log.warn({ err: err.message, versionId }, 'auto-deploy failed'));
  };
  registerApiRoutes(app, { store, sites, tokens, gateway, rounds, deployment, ota: publisher, keySets, federation });
  app.get('/docs/json', { schema: { hide: true } }, async () => app.swagger());
  await app.listen({ host: o.host ?? '127.0.0.1', port: o.port ?? 8700 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const url = `${https ? 'https' : 'http'}://${o.host ?? '127.0.0.1'}:${port}`;
  app.log.info({ url, dataDir: o.dataDir, coordinatorKey: federation.keys.current.publicKeyB64, federation: federation.adminFingerprint, summation: rounds.summation }, 'coordinator listening');
  if (!federation.certificate) app.log.warn({ coordinatorKey: federation.keys.current.publicKeyB64 }, 'this coordinator has no certificate from a federation admin: no site can enrol or connect until the admin runs "fedmed federation certify-coordinator"');
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
    close(reason = 'coordinator shutting down') {
      closing ??= (async () => {
        for (const e of store.data.experiments) rounds.stop(e.id, reason);
        await gateway.close(reason);
        await app.close();
        await store.write();
        releaseDataDirLock(o.dataDir);
      })();
      return closing;
    },
  };
}
