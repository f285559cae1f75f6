/**
 * Connects the coordinator's parts to its event feed (federationEvents.ts) and metrics, each
 * through a hook it already has: the gateway's session callback (site online/offline), the round
 * engine's observer (roundEvents.ts), the deployment's and the OTA publisher's callbacks, the
 * federation's revocation callback, and — for the admin's changes to sites and API tokens, which
 * happen in API routes — a fastify hook on those routes' successful responses. Called once at
 * start, before the API routes are registered (so the hook sees them).
 */
import type { FastifyInstance } from 'fastify';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { CoordinatorMetrics } from '../observability/coordinatorMetrics.js';
import type { Deployment } from '../ota/deployment.js';
import type { OtaPublisher } from '../ota/otaPublisher.js';
import { experimentPrivacy } from '../rounds/privacyLedger.js';
import type { RoundEngine } from '../rounds/roundEngine.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import { safely, type FederationEvents, type SiteChange } from './federationEvents.js';
import { RoundEvents } from './roundEvents.js';

export interface EventSources {
  app: FastifyInstance;
  store: CoordinatorStore;
  gateway: EdgeGateway;
  rounds: RoundEngine;
  deployment: Deployment;
  ota: OtaPublisher;
  federation: CoordinatorFederation;
  metrics: CoordinatorMetrics;
}

/** Admin routes whose success changes a site (the site's name from the request or the response). */
const SITE_ROUTES: Record<string, { change: SiteChange; site: (params: Record<string, string>, body: unknown, response: unknown) => unknown }> = {
  'POST /v1/sites': { change: 'added', site: (_p, body) => (body as { name?: unknown } | null)?.name },
  'POST /v1/enroll': { change: 'enrolled', site: (_p, _b, response) => (response as { site?: unknown } | null)?.site },
  'PUT /v1/sites/:name/certificate': { change: 'certified', site: (p) => p.name },
  'POST /v1/sites/:name/revoke': { change: 'revoked', site: (p) => p.name },
};

export function connectEventSources(events: FederationEvents, s: EventSources): void {
  const { gateway, metrics } = s;
  gateway.onSiteSession = (site, online) => events.emit({ type: 'site', site, online });
  s.rounds.observer = new RoundEvents(events, gateway, s.store);
  s.deployment.observe = (change, detail) => events.emit({ type: 'deployment', change, ...detail });
  s.ota.onDelivered = () => metrics.delivered();
  const announce = s.federation.onRevocations;
  s.federation.onRevocations = (list, revoked) => {
    announce(list, revoked);
    for (const site of revoked) events.emit({ type: 'site', site, online: gateway.isOnline(site), change: 'revoked' });
  };

  // ε spent so far, for experiments of earlier runs (later changes arrive as privacy events).
  for (const exp of s.store.data.experiments) {
    if (!exp.config.privacy) continue;
    void s.store.chargedRounds(exp.id).then((charged) =>
      safely(() => {
        const epsilon = experimentPrivacy(exp, charged).epsilon;
        if (epsilon !== null) metrics.epsilon.set({ experiment: exp.id }, epsilon);
      }),
      () => {},
    );
  }

  s.app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode !== 200) return payload;
    const route = `${req.method} ${req.routeOptions.url ?? ''}`;
    safely(() => {
      if (route === 'POST /v1/tokens' || route === 'DELETE /v1/tokens/:id') {
        const id = route.startsWith('DELETE') ? (req.params as { id: string }).id : jsonOf<{ id?: unknown }>(payload)?.id;
        if (typeof id === 'string') events.emit({ type: 'token', id, change: route.startsWith('DELETE') ? 'revoked' : 'created' });
        return;
      }
      if (route === 'POST /v1/experiments' || route === 'POST /v1/experiments/:id/stop') {
        const experiment = route.endsWith('/stop') ? (req.params as { id: string }).id : jsonOf<{ id?: unknown }>(payload)?.id;
        if (typeof experiment === 'string') events.emit({ type: 'experiment', experiment, change: route.endsWith('/stop') ? 'stopped' : 'created' });
        return;
      }
      const r = SITE_ROUTES[route];
      if (!r) return;
      const site = r.site(req.params as Record<string, string>, req.body, r.change === 'enrolled' ? jsonOf(payload) : undefined);
      if (typeof site === 'string') events.emit({ type: 'site', site, online: gateway.isOnline(site), change: r.change });
    });
    return payload;
  });
}

function jsonOf<T>(payload: unknown): T | null {
  if (typeof payload !== 'string') return null;
  try {
    return JSON.parse(payload) as T;
  } catch {
    return null;
  }
}
