/**
 * REST routes of the federation's trust anchors. Reading is public (public keys and signed
 * documents only: a site about to enrol needs them before it has any credential); changing
 * needs the admin role, and everything uploaded must be signed by the federation admin key,
 * which never comes here — the admin signs on their own machine (`fedmed federation ...`,
 * `fedmed site certify|revoke`).
 */
import type { FastifyInstance, preHandlerHookHandler } from 'fastify';
import { CloseCode } from '../../shared/protocol/protocolError.js';
import { SIGNED_DOCUMENT_SCHEMA } from '../../shared/secure/trust/certificates.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { SiteRegistry } from '../siteRegistry.js';
import { EnrolmentError } from '../siteRegistry.js';

const key32 = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' };

export function registerFederationRoutes(app: FastifyInstance, d: { federation: CoordinatorFederation; sites: SiteRegistry; gateway: EdgeGateway }, admin: { preHandler: preHandlerHookHandler }): void {
  app.get('/v1/federation', async () => d.federation.view());

  app.put<{ Body: { certificate: unknown; adminPublicKey?: string } }>(
    '/v1/federation/coordinator-certificate',
    { ...admin, schema: { body: { type: 'object', additionalProperties: false, required: ['certificate'], properties: { certificate: SIGNED_DOCUMENT_SCHEMA, adminPublicKey: key32 } } } },
    async (req) => {
      const { rotated } = await d.federation.installCertificate(req.body.certificate, req.body.adminPublicKey);
      app.log.warn({ rotated, serial: d.federation.certificate?.body.serial }, rotated ? 'coordinator key rotated: the next key is now certified and in use' : 'coordinator certificate installed');
      return { ...d.federation.view(), rotated };
    },
  );

  app.post('/v1/federation/coordinator-key/rotate', admin, async () => {
    const next = d.federation.keys.rotate();
    app.log.warn({ nextKey: next.publicKeyB64 }, 'coordinator key rotation started: the next key is used once the admin certifies it');
    return d.federation.view();
  });

  app.put<{ Body: { list: unknown } }>(
    '/v1/federation/revocations',
    { ...admin, schema: { body: { type: 'object', additionalProperties: false, required: ['list'], properties: { list: SIGNED_DOCUMENT_SCHEMA } } } },
    async (req) => {
      const revokedSites = await d.federation.acceptRevocations(req.body.list);
      app.log.warn({ sequence: d.federation.trust?.revocationSequence, revokedSites }, 'revocation list installed');
      return { sequence: d.federation.trust?.revocationSequence ?? 0, revokedSites };
    },
  );

  app.put<{ Params: { name: string }; Body: { certificate: unknown } }>(
    '/v1/sites/:name/certificate',
    { ...admin, schema: { body: { type: 'object', additionalProperties: false, required: ['certificate'], properties: { certificate: SIGNED_DOCUMENT_SCHEMA } } } },
    async (req) => {
      const site = d.sites.find(req.params.name);
      if (!site) throw new EnrolmentError(`no site named "${req.params.name}"`, 404);
      if (site.revokedAt) throw new EnrolmentError(`site "${site.name}" is revoked`, 409);
      const c = await d.federation.certifySite(site, req.body.certificate);
      app.log.info({ site: site.name, serial: c.body.serial, notAfter: c.body.notAfter }, 'site certified by the federation admin');
      return { site: site.name, serial: c.body.serial, notAfter: c.body.notAfter };
    },
  );
}

/** Closes the sessions of sites a new revocation list revoked and tells every other site. */
export function announceRevocations(gateway: EdgeGateway, list: Parameters<CoordinatorFederation['onRevocations']>[0], revokedSites: string[]): void {
  for (const s of revokedSites) gateway.disconnect(s, CloseCode.REVOKED, 'site revoked by the federation admin');
  gateway.broadcastRevocations({ type: 'revocations', list });
}
