/**
 * What goes into the audit log (auditLog.ts), and who is named as having done it. A layer over
 * the coordinator's parts, like events/eventSources.ts: nothing here is called by the round
 * engine, the deployment or the API routes themselves.
 *
 *   - The event bus (events/federationEvents.ts) supplies the changes: sites added, enrolled,
 *     certified, revoked; tokens created, revoked; experiments created, stopped; rounds started
 *     and ended; versions published; privacy charged; deployment publish, canary, promote,
 *     rollback, held, gate decisions; what sites report about the versions they were offered.
 *   - API changes the bus does not carry (rounds requested, the coordinator's certificate and key
 *     rotation, revocation lists, CKKS key sets and grants, and any other successful POST / PUT /
 *     PATCH / DELETE under /v1) are taken from a fastify onSend hook on their 2xx responses.
 *   - The actor: every mutating request runs its handler and hooks inside an AsyncLocalStorage
 *     context naming its API token (id and role, from the bearer token's hash). A change announced
 *     on the bus while that request is still open is the token's; after the response (a round
 *     the request started, a deployment a round triggered) it is the coordinator's. Enrolment is
 *     the site's; a site's OTA report is the site's.
 *
 * Details are identifiers, counts and hashes only: no token secret, join token, key or model data.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { FederationEvent, FederationEvents } from '../events/federationEvents.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import { sha256Hex } from '../siteRegistry.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import { siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';
import { cappedDetails, type AuditActor, type AuditDetails } from '../../shared/audit/auditChain.js';
import type { AuditLog, AuditRecord } from '../../shared/audit/auditLog.js';

export interface AuditSources {
  app: FastifyInstance;
  store: CoordinatorStore;
  events: FederationEvents;
  federation: CoordinatorFederation;
  log: { warn(o: object, msg: string): void };
}

const COORDINATOR: AuditActor = { kind: 'coordinator' };
const MUTATING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** The `audit` event at most this often (the dashboard reloads its view on it). */
const AUDIT_EVENT_MS = 500;

interface RequestContext {
  actor: AuditActor | null;
  open: boolean;
  /** action + subject already recorded for this request (a change announced twice is one entry). */
  seen: Set<string>;
}

/** Mutating API routes whose changes the event bus announces (recorded from there). */
const ON_THE_BUS = new Set([
  'POST /v1/sites',
  'POST /v1/enroll',
  'PUT /v1/sites/:name/certificate',
  'POST /v1/sites/:name/revoke',
  'POST /v1/tokens',
  'DELETE /v1/tokens/:id',
  'POST /v1/experiments',
  'POST /v1/experiments/:id/stop',
  'POST /v1/deployment/publish',
  'POST /v1/deployment/promote',
  'POST /v1/deployment/rollback',
]);

type RouteAudit = (req: FastifyRequest, response: Record<string, unknown> | null, s: AuditSources) => Omit<AuditRecord, 'actor'> | null;

/** Mutating API routes the bus does not announce. */
const ROUTES: Record<string, RouteAudit> = {
  'POST /v1/experiments/:id/rounds': (req) => ({ action: 'rounds.started', subject: param(req, 'id'), details: { rounds: num((req.body as { rounds?: unknown } | null)?.rounds) } }),
  'PUT /v1/federation/coordinator-certificate': (_req, res, s) => ({
    action: res?.rotated === true ? 'federation.coordinator_key_rotated' : 'federation.coordinator_certified',
    subject: 'coordinator',
    details: { serial: s.federation.certificate?.body.serial ?? null, key: keyId(s.federation.keys.current.publicKeyB64), adminFingerprint: s.federation.adminFingerprint },
  }),
  'POST /v1/federation/coordinator-key/rotate': (_req, res) => ({ action: 'federation.coordinator_key_rotation_started', subject: 'coordinator', details: { nextKey: keyId(str(res?.nextCoordinatorPublicKey)) } }),
  'PUT /v1/federation/revocations': (_req, res) => ({ action: 'federation.revocations_installed', subject: 'revocation-list', details: { sequence: num(res?.sequence), revokedSites: strings(res?.revokedSites) } }),
  'POST /v1/ckks/keysets': (req) => ({ action: 'ckks.keyset_created', subject: str((req.body as { id?: unknown } | null)?.id), details: {} }),
  'PUT /v1/ckks/keysets/:id/sites/:site': (req) => ({ action: 'ckks.key_granted', subject: param(req, 'id'), details: { site: param(req, 'site') } }),
};

/**
 * Connects the audit log to the coordinator. Call before the API routes are registered (the
 * hooks must see them), after connectEventSources (whose onSend hook announces API changes).
 */
export function connectAuditSources(audit: AuditLog, s: AuditSources): void {
  const als = new AsyncLocalStorage<RequestContext>();
  const contexts = new WeakMap<FastifyRequest, RequestContext>();
  const record = (r: AuditRecord): void => {
    const ctx = als.getStore();
    if (ctx?.open) {
      const key = `${r.action}\0${r.subject}`;
      if (ctx.seen.has(key)) return;
      ctx.seen.add(key);
    }
    void audit.append({ ...r, details: cappedDetails(r.details ?? {}) });
  };
  /** The open request's token, else `fallback`. */
  const actor = (fallback: AuditActor = COORDINATOR): AuditActor => {
    const ctx = als.getStore();
    return ctx?.open && ctx.actor ? ctx.actor : fallback;
  };

  // The `audit` event, throttled.
  let lastEmit = 0;
  let timer: NodeJS.Timeout | null = null;
  audit.onAppended = () => {
    if (timer) return;
    const wait = lastEmit + AUDIT_EVENT_MS - Date.now();
    const emit = (): void => {
      timer = null;
      lastEmit = Date.now();
      s.events.emit({ type: 'audit' });
    };
    if (wait <= 0) emit();
    else (timer = setTimeout(emit, wait)).unref();
  };

  s.app.addHook('preHandler', (req, _reply, done) => {
    if (!MUTATING.has(req.method)) return done();
    const ctx: RequestContext = { actor: tokenActor(s.store, req), open: true, seen: alreadyDone(s.store, req) };
    contexts.set(req, ctx);
    als.run(ctx, done);
  });
  s.app.addHook('onResponse', (req, _reply, done) => {
    const ctx = contexts.get(req);
    if (ctx) ctx.open = false;
    done();
  });
  // (callback style, not async: a second async onSend hook delays a guard's 401 enough for
  // fastify to run the route's handler too, as guards do not `return reply`)
  s.app.addHook('onSend', (req, reply, payload, done) => {
    const route = `${req.method} ${req.routeOptions.url ?? ''}`;
    if (MUTATING.has(req.method) && reply.statusCode >= 200 && reply.statusCode < 300 && !ON_THE_BUS.has(route) && route.includes(' /v1/')) {
      try {
        const f = ROUTES[route];
        const r = f ? f(req, jsonOf(payload), s) : { action: 'api.request', subject: route, details: { method: req.method, route, ...paramsOf(req) } };
        if (r) record({ ...r, actor: actor() });
      } catch (err) {
        s.log.warn({ err: (err as Error).message, route }, 'could not build the audit entry of a request');
      }
    }
    done(null, payload);
  });

  s.events.on((e) => {
    try {
      const r = fromEvent(e, s, actor);
      if (r) record(r);
    } catch (err) {
      s.log.warn({ err: (err as Error).message, event: e.type }, 'could not build the audit entry of an event');
    }
  });
}

/** The audit entry of a bus event, or null for events that are not state changes (sessions, phases, metrics). */
function fromEvent(e: FederationEvent, s: AuditSources, actor: (fallback?: AuditActor) => AuditActor): AuditRecord | null {
  const data = s.store.data;
  switch (e.type) {
    case 'site': {
      if (!e.change || e.change === 'data') return null;
      const site = data.sites.find((x) => x.name === e.site);
      const details: AuditDetails = {};
      if (e.change === 'enrolled' && site?.publicKey && site.encryptionKey) details.fingerprint = siteKeysFingerprint(site.publicKey, site.encryptionKey);
      if (e.change === 'certified' && site?.certificate) Object.assign(details, { serial: site.certificate.body.serial, notAfter: site.certificate.body.notAfter });
      return { actor: e.change === 'enrolled' ? { kind: 'site', site: e.site } : actor(), action: `site.${e.change}`, subject: e.site, details };
    }
    case 'token': {
      const t = data.apiTokens.find((x) => x.id === e.id);
      return { actor: actor(), action: `token.${e.change}`, subject: e.id, details: { role: t?.role ?? null, ...(t?.name ? { name: t.name } : {}), ...(e.change === 'created' && t?.expiresAt ? { expiresAt: t.expiresAt } : {}) } };
    }
    case 'experiment': {
      const x = data.experiments.find((y) => y.id === e.experiment);
      const details: AuditDetails =
        e.change === 'created' && x
          ? { name: x.name, model: x.config.model.zoo ?? 'custom', strategy: x.config.strategy, security: x.config.security ?? 'plain', deploy: x.config.deploy ?? 'gated', privacy: !!x.config.privacy, initialVersion: x.currentVersion }
          : {};
      return { actor: actor(), action: `experiment.${e.change}`, subject: e.experiment, details };
    }
    case 'round':
      return { actor: COORDINATOR, action: `round.${e.status}`, subject: e.experiment, details: { round: e.round, ...(e.reason ? { reason: e.reason.slice(0, 300) } : {}) } };
    case 'version':
      return { actor: COORDINATOR, action: 'version.published', subject: e.version, details: { experiment: e.experiment, round: e.round, parent: e.parent, paramsSha256: e.paramsSha256, encrypted: e.encrypted } };
    case 'privacy':
      return { actor: COORDINATOR, action: 'privacy.charged', subject: e.experiment, details: { epsilon: e.epsilon } };
    case 'deployment': {
      const d = data.deployment;
      const version = e.version ?? '';
      switch (e.change) {
        case 'report': {
          const m = data.siteModels?.find((x) => x.site === e.site);
          return { actor: e.site ? { kind: 'site', site: e.site } : COORDINATOR, action: `ota.${m?.status ?? 'reported'}`, subject: version, details: { site: e.site ?? null, ...(m?.reason ? { reason: m.reason.slice(0, 300) } : {}) } };
        }
        case 'held':
          return { actor: COORDINATOR, action: 'deployment.held', subject: version, details: { reason: d?.held?.reason?.slice(0, 300) ?? null, accuracy: d?.held?.accuracy ?? null } };
        case 'gate':
          return { actor: COORDINATOR, action: d?.lastGate?.decision === 'deployed' ? 'deployment.deployed' : 'deployment.gate', subject: version, details: { decision: d?.lastGate?.decision ?? null, reason: d?.lastGate?.reason?.slice(0, 300) ?? null, accuracy: d?.lastGate?.accuracy ?? null } };
        case 'canary':
          return { actor: actor(), action: 'deployment.canary', subject: version, details: { sites: d?.canary?.sites ?? [] } };
        default:
          return { actor: actor(), action: `deployment.${e.change}`, subject: version, details: {} };
      }
    }
    default:
      return null;
  }
}

/**
 * Changes a request would announce that are no change: revoking what is already revoked (the
 * routes are idempotent, and an admin's `fedmed site revoke` installs a revocation list, then
 * revokes the site by name). Seeded into the request's `seen`, so they are not recorded again.
 */
function alreadyDone(store: CoordinatorStore, req: FastifyRequest): Set<string> {
  const route = `${req.method} ${req.routeOptions.url ?? ''}`;
  const p = (req.params ?? {}) as Record<string, string>;
  if (route === 'POST /v1/sites/:name/revoke' && store.data.sites.find((x) => x.name === p.name)?.revokedAt) return new Set([`site.revoked\0${p.name}`]);
  if (route === 'DELETE /v1/tokens/:id' && store.data.apiTokens.find((x) => x.id === p.id)?.revokedAt) return new Set([`token.revoked\0${p.id}`]);
  return new Set();
}

/** The API token of a request ({kind:'token', id, role}), or null (no or an unknown token). */
function tokenActor(store: CoordinatorStore, req: FastifyRequest): AuditActor | null {
  const h = req.headers.authorization;
  if (!h?.startsWith('Bearer fma_')) return null;
  const hash = sha256Hex(h.slice(7).trim());
  const t = store.data.apiTokens.find((x) => x.sha256 === hash);
  return t ? { kind: 'token', id: t.id, role: t.role } : null;
}


function paramsOf(req: FastifyRequest): AuditDetails {
  const p = (req.params ?? {}) as Record<string, unknown>;
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [`param.${k}`, String(v).slice(0, 128)]));
}

const param = (req: FastifyRequest, name: string): string => String((req.params as Record<string, unknown>)[name] ?? '').slice(0, 128);
const str = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 128) : '');
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
/** A public key named by a short hash (no key material in the log). */
const keyId = (publicKey: string): string | null => (publicKey ? `sha256:${sha256Hex(publicKey).slice(0, 16)}` : null);

function jsonOf(payload: unknown): Record<string, unknown> | null {
  if (typeof payload !== 'string') return null;
  try {
    const v = JSON.parse(payload) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
