/**
 * The researcher / admin REST API (fastify routes with JSON schemas; the OpenAPI document is at
 * /docs/json). Bearer API tokens carry a role: admin (sites, tokens, everything), researcher
 * (experiments, rounds) or deployer (publish, promote, roll back deployments); all can read.
 * Enrolment uses the site's one-time join token instead.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FedmedError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/initParams.js';
import { specHash, versionHashes } from '../../shared/model/modelHash.js';
import { encodeParamsFile } from '../../shared/model/paramsFile.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { CloseCode } from '../../shared/protocol/protocolError.js';
import type { ApiTokens } from '../apiTokens.js';
import { checkStrategy, EXPERIMENT_CONFIG_SCHEMA, experimentSpec, resolveKeySet, resolvePrivacy, type ExperimentConfig } from '../experimentConfig.js';
import { experimentPrivacy } from '../rounds/privacyLedger.js';
import { pendingApproval, siteRefusals } from '../rounds/siteRefusals.js';
import { REFUSAL_KINDS } from '../../shared/protocol/messages.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { RoundEngine } from '../rounds/roundEngine.js';
import type { Deployment } from '../ota/deployment.js';
import type { OtaPublisher } from '../ota/otaPublisher.js';
import type { SiteRegistry } from '../siteRegistry.js';
import type { SiteReadiness } from '../siteReadiness.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import { ROLES, type Role } from '../store/storeSchema.js';
import { MAX_WRAPPED_KEY_BYTES, type CkksKeySets } from '../ckks/ckksKeySets.js';
import { SIGNED_DOCUMENT_SCHEMA } from '../../shared/secure/trust/certificates.js';
import { CKKS_PARAMETERS_SCHEMA, type CkksParameters } from '../../shared/secure/ckks/ckksParams.js';
import { signEnrolmentReceipt } from '../../shared/secure/trust/enrolmentReceipt.js';
import { siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import { registerFederationRoutes } from './federationRoutes.js';

export interface ApiDeps {
  store: CoordinatorStore;
  sites: SiteRegistry;
  tokens: ApiTokens;
  gateway: EdgeGateway;
  rounds: RoundEngine;
  deployment: Deployment;
  ota: OtaPublisher;
  keySets: CkksKeySets;
  federation: CoordinatorFederation;
  readiness: SiteReadiness;
}

const errorBody = { type: 'object', properties: { error: { type: 'string' }, message: { type: 'string' } } };

/** The bearer token of a request, if it sent one. */
export function bearerToken(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice(7).trim() : undefined;
}

/**
 * A preHandler admitting active API tokens of the given roles: 401 without a valid token, 403 for
 * another role. It returns the reply it sent: an async hook that sends without returning it lets
 * fastify go on to the route's handler once other async hooks are registered.
 */
export function roleGuard(tokens: Pick<ApiTokens, 'roleOf'>, roles: readonly Role[]) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const role = tokens.roleOf(bearerToken(req));
    if (!role) return reply.code(401).send({ error: 'unauthorized', message: 'send "Authorization: Bearer <API token>" (see DATA_DIR/admin.token)' });
    if (!roles.includes(role)) return reply.code(403).send({ error: 'forbidden', message: `this needs the ${roles.join(' or ')} role; your token is ${role}` });
    return undefined;
  };
}

export function registerApiRoutes(app: FastifyInstance, d: ApiDeps): void {
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  const requireRole = (roles: Role[]) => roleGuard(d.tokens, roles);
  const admin = { preHandler: requireRole(['admin']) };
  const researcher = { preHandler: requireRole(['admin', 'researcher']) };
  // What reaches clinicians' inference services: not the researcher's to decide.
  const deployer = { preHandler: requireRole(['admin', 'deployer']) };
  const reader = { preHandler: requireRole([...ROLES]) };

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown; status?: number }, _req, reply) => {
    if (err.validation) return reply.code(400).send({ error: 'invalid request', message: err.message });
    if (err instanceof FedmedError) return reply.code((err as FedmedError & { status?: number }).status ?? 400).send({ error: err.code, message: err.message });
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: 'bad request', message: err.message });
    app.log.error({ err }, 'request failed');
    return reply.code(500).send({ error: 'internal', message: 'internal error (see the coordinator log)' });
  });

  app.get('/healthz', { schema: { response: { 200: { type: 'object', properties: { ok: { type: 'boolean' }, sitesOnline: { type: 'integer' } } } } } }, async () => ({ ok: true, sitesOnline: d.gateway.readySites().length }));

  app.post<{ Body: { token: string; publicKey: string; encryptionKey: string } }>(
    '/v1/enroll',
    {
      schema: {
        body: { type: 'object', additionalProperties: false, required: ['token', 'publicKey', 'encryptionKey'], properties: { token: { type: 'string', maxLength: 200 }, publicKey: { type: 'string', maxLength: 100 }, encryptionKey: { type: 'string', maxLength: 100 } } },
        response: { 200: { type: 'object', properties: { site: { type: 'string' }, receipt: { type: 'string' } } }, '4xx': errorBody },
      },
    },
    async (req) => {
      const site = await d.sites.enroll(req.body.token, { publicKey: req.body.publicKey, encryptionKey: req.body.encryptionKey });
      app.log.info({ site: site.name, fingerprint: siteKeysFingerprint(site.publicKey!, site.encryptionKey!) }, 'site enrolled; waiting for the federation admin to certify its keys');
      // The receipt proves to the site that the certified coordinator registered exactly these keys.
      return { site: site.name, receipt: signEnrolmentReceipt(d.federation.signingKey, { site: site.name, identityKey: site.publicKey!, encryptionKey: site.encryptionKey! }) };
    },
  );

  const siteView = (name: string) => {
    const s = d.sites.find(name)!;
    const uncertified = s.enrolledAt ? d.federation.uncertified(s) : 'not enrolled';
    return {
      name: s.name,
      enrolled: !!s.enrolledAt,
      revoked: !!s.revokedAt,
      online: d.gateway.isOnline(s.name),
      lastSeen: s.lastSeen,
      roundsJoined: s.roundsJoined,
      createdAt: s.createdAt,
      // Public keys: identity (Ed25519) and encryption (X25519), their fingerprint, and the admin's certificate of them.
      publicKey: s.publicKey,
      encryptionKey: s.encryptionKey ?? null,
      fingerprint: s.publicKey && s.encryptionKey ? siteKeysFingerprint(s.publicKey, s.encryptionKey) : null,
      certified: uncertified === null,
      uncertifiedReason: uncertified,
      certificate: s.certificate ?? null,
      // What the site refused lately (latest per experiment) and the experiments awaiting its approval.
      refusals: siteRefusals(s),
      pendingApproval: pendingApproval(s),
      // Its labelled examples as its policy releases them, and whether it reaches its own minimum (null: it has not said).
      data: d.readiness.of(s.name),
    };
  };
  const nullableString = { type: ['string', 'null'] };
  const siteSchema = {
    type: 'object',
    properties: {
      name: { type: 'string' },
      enrolled: { type: 'boolean' },
      revoked: { type: 'boolean' },
      online: { type: 'boolean' },
      lastSeen: nullableString,
      roundsJoined: { type: 'integer' },
      createdAt: { type: 'string' },
      publicKey: nullableString,
      encryptionKey: nullableString,
      fingerprint: nullableString,
      certified: { type: 'boolean' },
      uncertifiedReason: nullableString,
      // (any JSON: a response schema would drop the certificate's fields)
      certificate: {},
      refusals: {
        type: 'array',
        items: {
          type: 'object',
          properties: {
            experiment: { type: 'string' },
            round: { type: 'integer' },
            kind: { enum: [...REFUSAL_KINDS] },
            reason: { type: 'string' },
            at: { type: 'string' },
            supersededInRound: { type: 'integer' },
          },
        },
      },
      pendingApproval: { type: 'array', items: { type: 'string' } },
      data: {
        type: ['object', 'null'],
        properties: {
          examples: { type: ['object', 'null'], properties: { train: { type: 'integer' }, validation: { type: 'integer' }, test: { type: 'integer' } } },
          release: { type: 'string' },
          ready: { type: 'boolean' },
          minExamples: { type: 'integer' },
          reportedAt: { type: 'string' },
        },
      },
    },
  };

  app.post<{ Body: { name: string } }>(
    '/v1/sites',
    { ...admin, schema: { body: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { type: 'string' } } }, response: { 200: { type: 'object', properties: { name: { type: 'string' }, token: { type: 'string' } } } } } },
    async (req) => {
      const { site, token } = await d.sites.add(req.body.name);
      return { name: site.name, token };
    },
  );
  app.get('/v1/sites', { ...reader, schema: { response: { 200: { type: 'array', items: siteSchema } } } }, async () => d.sites.list().map((s) => siteView(s.name)));
  app.get<{ Params: { name: string } }>('/v1/sites/:name', { ...reader, schema: { response: { 200: siteSchema } } }, async (req, reply) => {
    if (!d.sites.find(req.params.name)) return reply.code(404).send({ error: 'not found', message: `no site named "${req.params.name}"` });
    return siteView(req.params.name);
  });
  app.post<{ Params: { name: string } }>('/v1/sites/:name/revoke', { ...admin, schema: { response: { 200: siteSchema } } }, async (req) => {
    const site = await d.sites.revoke(req.params.name);
    d.readiness.forget(site.name);
    d.gateway.disconnect(site.name, CloseCode.REVOKED, 'site revoked by the federation admin');
    app.log.warn({ site: site.name }, 'site revoked');
    return siteView(site.name);
  });

  registerFederationRoutes(app, d, admin);

  const tokenView = { type: 'object', properties: { id: { type: 'string' }, role: { type: 'string' }, name: { type: 'string' }, createdAt: { type: 'string' }, expiresAt: { type: 'string' }, revokedAt: { type: 'string' }, active: { type: 'boolean' } } };
  app.post<{ Body: { role: Role; name?: string; expiresDays?: number } }>(
    '/v1/tokens',
    {
      ...admin,
      schema: {
        body: { type: 'object', additionalProperties: false, required: ['role'], properties: { role: { enum: [...ROLES] }, name: { type: 'string', minLength: 1, maxLength: 100 }, expiresDays: { type: 'number', exclusiveMinimum: 0, maximum: 3650 } } },
        response: { 200: { type: 'object', properties: { id: { type: 'string' }, token: { type: 'string' }, role: { type: 'string' }, expiresAt: { type: 'string' } } } },
      },
    },
    async (req) => ({ ...(await d.tokens.create(req.body.role, { name: req.body.name, expiresDays: req.body.expiresDays })), role: req.body.role }),
  );
  app.get('/v1/tokens', { ...admin, schema: { response: { 200: { type: 'array', items: tokenView } } } }, async () => d.tokens.list());
  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', { ...admin, schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } }, response: { 200: tokenView } } }, async (req) => d.tokens.revoke(req.params.id));

  const experimentView = (id: string) => {
    const e = d.store.data.experiments.find((x) => x.id === id)!;
    return { id: e.id, name: e.name, createdAt: e.createdAt, currentVersion: e.currentVersion, roundsCompleted: e.roundsCompleted, running: d.rounds.isRunning(e.id), parameters: layoutOf(e.spec).size, config: e.config };
  };
  app.post<{ Body: ExperimentConfig }>('/v1/experiments', { ...researcher, schema: { body: EXPERIMENT_CONFIG_SCHEMA } }, async (req) => {
    const config = req.body;
    const spec = experimentSpec(config);
    checkStrategy(config);
    resolvePrivacy(config);
    resolveKeySet(config, d.keySets);
    const params = initParams(spec, config.initSeed);
    const { id: versionId, paramsSha256 } = versionHashes(spec, params);
    d.store.saveParams(versionId, spec, params, paramsSha256);
    const id = `exp-${randomUUID().slice(0, 8)}`;
    await d.store.update((data) => void data.experiments.push({ id, name: config.name, createdAt: new Date().toISOString(), config, spec, currentVersion: versionId, roundsCompleted: 0 }), {
      versions: [{ id: versionId, experiment: id, round: 0, parent: null, specHash: specHash(spec), paramsSha256, createdAt: new Date().toISOString() }],
    });
    app.log.info({ experiment: id, name: config.name }, 'experiment created');
    return experimentView(id);
  });
  app.get('/v1/experiments', reader, async () => d.store.data.experiments.map((e) => experimentView(e.id)));
  app.get<{ Params: { id: string } }>('/v1/experiments/:id', reader, async (req, reply) => {
    if (!d.store.data.experiments.some((e) => e.id === req.params.id)) return reply.code(404).send({ error: 'not found', message: `no experiment ${req.params.id}` });
    return experimentView(req.params.id);
  });
  app.post<{ Params: { id: string }; Body: { rounds: number } }>(
    '/v1/experiments/:id/rounds',
    { ...researcher, schema: { body: { type: 'object', additionalProperties: false, required: ['rounds'], properties: { rounds: { type: 'integer', minimum: 1, maximum: 10000 } } } } },
    async (req) => d.rounds.start(req.params.id, req.body.rounds),
  );
  app.post<{ Params: { id: string } }>('/v1/experiments/:id/stop', researcher, async (req) => ({ stopped: d.rounds.stop(req.params.id) }));
  // ?last=N: only the latest N rounds (an experiment of thousands of rounds need not be read whole).
  // (a query string is text: the API's validator does not coerce types)
  const roundsQuery = { type: 'object', additionalProperties: false, properties: { last: { type: 'string', pattern: '^[1-9][0-9]{0,5}$' } } };
  const lastRounds = (q: { last?: string }) => ({ limit: q.last === undefined ? undefined : Number(q.last) });
  app.get<{ Params: { id: string }; Querystring: { last?: string } }>('/v1/experiments/:id/rounds', { ...reader, schema: { querystring: roundsQuery } }, async (req) => d.store.rounds(req.params.id, lastRounds(req.query)));
  app.get<{ Params: { id: string }; Querystring: { last?: string } }>('/v1/experiments/:id/metrics', { ...reader, schema: { querystring: roundsQuery } }, async (req) =>
    (await d.store.rounds(req.params.id, lastRounds(req.query)))
      .map((r) => ({ round: r.round, status: r.status, fit: r.fitMetrics, evaluate: r.evalMetrics, sites: r.sites.filter((s) => s.phase === 'evaluate' && s.metrics).map((s) => ({ site: s.site, numExamples: s.numExamples, ...s.metrics })) })),
  );
  app.get<{ Params: { id: string } }>('/v1/experiments/:id/privacy', reader, async (req, reply) => {
    const e = d.store.data.experiments.find((x) => x.id === req.params.id);
    if (!e) return reply.code(404).send({ error: 'not found', message: `no experiment ${req.params.id}` });
    return experimentPrivacy(e, await d.store.chargedRounds(e.id));
  });
  app.get<{ Params: { id: string } }>('/v1/experiments/:id/versions', reader, async (req) => d.store.versions(req.params.id));
  app.get<{ Params: { id: string } }>('/v1/versions/:id/params', reader, async (req, reply) => {
    const v = await d.store.version(req.params.id);
    const e = v && d.store.data.experiments.find((x) => x.id === v.experiment);
    if (!v || !e) return reply.code(404).send({ error: 'not found', message: `no model version ${req.params.id}` });
    if (v.encrypted) return reply.code(409).send({ error: 'encrypted', message: `version ${v.id} was aggregated under CKKS: the coordinator holds only its encrypted aggregate (GET /v1/versions/${v.id}/ciphertext); a key holder decrypts it with "fedmed federation keys decrypt"` });
    const bytes = encodeParamsFile(e.spec, d.store.loadParams(v.id, e.spec));
    return reply.type('application/octet-stream').header('content-disposition', `attachment; filename="${v.id}.fmp"`).send(bytes);
  });

  // The encrypted aggregate of a CKKS version (applied to its parent; useless without the key).
  app.get<{ Params: { id: string } }>('/v1/versions/:id/ciphertext', reader, async (req, reply) => {
    const v = await d.store.version(req.params.id);
    if (!v?.encrypted) return reply.code(404).send({ error: 'not found', message: `no CKKS version ${req.params.id}` });
    return reply.type('application/octet-stream').send(d.store.loadEncryptedVersion(v.id));
  });

  // CKKS key sets: the admin registers the public parameters, then one wrapped key per site.
  const keySetSchema = { type: 'object', properties: { id: { type: 'string' }, parameters: CKKS_PARAMETERS_SCHEMA, createdAt: { type: 'string' }, sites: { type: 'array', items: { type: 'object', properties: { site: { type: 'string' }, encryptionKey: { type: 'string' }, at: { type: 'string' } } } } } };
  app.get('/v1/ckks/keysets', { ...reader, schema: { response: { 200: { type: 'array', items: keySetSchema } } } }, async () => d.keySets.list());
  app.post<{ Body: { id: string; parameters: CkksParameters; certificate: unknown } }>(
    '/v1/ckks/keysets',
    { ...admin, schema: { body: { type: 'object', additionalProperties: false, required: ['id', 'parameters', 'certificate'], properties: { id: { type: 'string', pattern: '^[0-9a-f]{32}$' }, parameters: CKKS_PARAMETERS_SCHEMA, certificate: SIGNED_DOCUMENT_SCHEMA } }, response: { 200: keySetSchema } } },
    async (req) => d.keySets.create(req.body.id, req.body.parameters, req.body.certificate),
  );
  // The wrapped key (base64) with the admin's grant: "these bytes are key set ID for SITE's encryption key".
  app.put<{ Params: { id: string; site: string }; Body: { encryptionKey: string; wrapped: string; grant: unknown } }>(
    '/v1/ckks/keysets/:id/sites/:site',
    {
      ...admin,
      bodyLimit: 2 * MAX_WRAPPED_KEY_BYTES,
      schema: { body: { type: 'object', additionalProperties: false, required: ['encryptionKey', 'wrapped', 'grant'], properties: { encryptionKey: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' }, wrapped: { type: 'string', maxLength: 2 * MAX_WRAPPED_KEY_BYTES, pattern: '^[A-Za-z0-9+/]*={0,2}$' }, grant: SIGNED_DOCUMENT_SCHEMA } }, response: { 200: keySetSchema } },
    },
    async (req) => {
      const set = await d.keySets.grant(req.params.id, req.params.site, req.body.encryptionKey, Buffer.from(req.body.wrapped, 'base64'), req.body.grant);
      app.log.info({ keySet: set.id, site: req.params.site }, 'CKKS key granted to site');
      return set;
    },
  );

  // Rollout control: which version each site's inference service runs (see coordinator/ota/).
  const versionRef = { type: 'string', pattern: '^[0-9a-f]{8,64}$' };
  app.get('/v1/deployment', reader, async () => ({ ...(await d.deployment.view()), otaBytesSent: Object.fromEntries(d.ota.bytesSent) }));
  app.post<{ Body: { version: string; sites?: string[] } }>(
    '/v1/deployment/publish',
    { ...deployer, schema: { body: { type: 'object', additionalProperties: false, required: ['version'], properties: { version: versionRef, sites: { type: 'array', maxItems: 10000, items: { type: 'string', minLength: 1, maxLength: 128 } } } } } },
    async (req) => d.deployment.publish(req.body.version, req.body.sites),
  );
  app.post('/v1/deployment/promote', deployer, async () => d.deployment.promote());
  app.post<{ Body: { to?: string } | undefined }>(
    '/v1/deployment/rollback',
    { ...deployer, schema: { body: { type: 'object', additionalProperties: false, properties: { to: versionRef } } } },
    async (req) => d.deployment.rollback(req.body?.to),
  );
  app.get<{ Params: { id: string } }>('/v1/versions/:id/manifest', reader, async (req, reply) => {
    const v = await d.store.version(await d.deployment.resolve(req.params.id));
    if (!v?.signed) return reply.code(404).send({ error: 'not found', message: `version ${req.params.id} has not been deployed: it has no signed manifest yet` });
    return v.signed;
  });

  app.get('/v1/status', reader, async () => ({
    sites: d.sites.list().map((s) => siteView(s.name)),
    experiments: await Promise.all(d.store.data.experiments.map(async (e) => {
      const [last] = await d.store.rounds(e.id, { limit: 1 });
      return { ...experimentView(e.id), privacy: experimentPrivacy(e, e.config.privacy ? await d.store.chargedRounds(e.id) : []), lastRound: last ? { round: last.round, status: last.status, reason: last.reason, evaluate: last.evalMetrics } : null };
    })),
  }));
}
