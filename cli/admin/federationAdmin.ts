/**
 * The federation admin's operations (run on the admin's machine, with the admin key): certify
 * the coordinator and rotate its key, create sites, certify a site's keys after comparing their
 * fingerprint out of band, and revoke sites or certificates with a new signed revocation list.
 * Used by `fedmed federation ...` and `fedmed site ...`, by simulations and by the tests.
 */
import { UsageError } from '../../shared/errors.js';
import type { AdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueCoordinatorCertificate, issueRevocationList, issueSiteCertificate } from '../../shared/secure/trust/adminSigning.js';
import type { CoordinatorCertificate, SiteCertificate } from '../../shared/secure/trust/certificates.js';
import { FederationTrust } from '../../shared/secure/trust/federationTrust.js';
import { keyFingerprint, parseFingerprint, showFingerprint, siteKeysFingerprint } from '../../shared/secure/trust/fingerprint.js';
import { parseJoinToken } from '../../shared/secure/trust/joinToken.js';
import { TrustError } from '../../shared/secure/trust/trustError.js';
import type { AdminSiteView, AdminTarget } from './adminTarget.js';

/**
 * The admin's view of the federation: the admin key and the newest revocation list the admin
 * signed (its ledger), never less. A coordinator of another federation is refused; one that
 * presents an older list than the admin's (or none) — out of date, or hiding a revocation — gets
 * the admin's list installed again before anything else is done.
 */
export async function adminTrust(target: AdminTarget, admin: AdminKey): Promise<FederationTrust> {
  const view = await target.federation();
  if (view.adminPublicKey && view.adminPublicKey !== admin.publicKeyB64) {
    throw new UsageError(`this coordinator belongs to the federation of admin key ${showFingerprint(keyFingerprint(view.adminPublicKey))}, not ${showFingerprint(admin.fingerprint)} (this --admin-key)`);
  }
  const trust = new FederationTrust(admin.publicKeyB64, admin.ledger.revocations);
  if (view.revocations) {
    try {
      // A newer admin-signed list (signed on another of the admin's machines) is taken and kept.
      if (trust.acceptRevocations(view.revocations)) admin.ledger.recordRevocations(view.revocations);
    } catch (err) {
      if (!(err instanceof TrustError) || err.reason !== 'stale') throw err;
    }
  }
  const held = view.revocations?.body.sequence ?? 0;
  if (view.adminPublicKey && trust.revocations && held < trust.revocationSequence) await target.installRevocations(trust.revocations);
  return trust;
}

export interface CertifiedCoordinator {
  publicKey: string;
  fingerprint: string;
  certificate: CoordinatorCertificate;
  rotated: boolean;
}

/**
 * Certifies the coordinator's key — or, during a rotation, its next key, which then takes over —
 * for the URLs sites reach it at (default: the URL used here). `expectKey`: refuse unless the
 * key is this one (as printed in the coordinator's log), so a relay cannot get its own key certified.
 */
export async function certifyCoordinator(target: AdminTarget, admin: AdminKey, o: { urls?: string[]; days?: number; expectKey?: string } = {}): Promise<CertifiedCoordinator> {
  await adminTrust(target, admin);
  const view = await target.federation();
  const publicKey = view.nextCoordinatorPublicKey ?? view.coordinatorPublicKey;
  if (o.expectKey && o.expectKey !== publicKey && parseFingerprint(o.expectKey) !== keyFingerprint(publicKey)) {
    throw new UsageError(`the coordinator's key is ${publicKey} (${showFingerprint(keyFingerprint(publicKey))}), not the expected ${o.expectKey}: not certified`);
  }
  const urls = o.urls && o.urls.length > 0 ? o.urls : target.url ? [target.url] : [];
  if (urls.length === 0) throw new UsageError('give --url URL (the address sites reach the coordinator at)');
  const certificate = issueCoordinatorCertificate(admin, { publicKey, urls, days: o.days });
  admin.ledger.recordCertificate(certificate);
  const { rotated } = await target.installCoordinatorCertificate(certificate, admin.publicKeyB64);
  return { publicKey, fingerprint: keyFingerprint(publicKey), certificate, rotated };
}

/** Rotates the coordinator's key: the coordinator makes a next key, the admin certifies it, it takes over; optionally the old certificate is revoked. */
export async function rotateCoordinatorKey(target: AdminTarget, admin: AdminKey, o: { urls?: string[]; days?: number; revokeOld?: boolean } = {}): Promise<CertifiedCoordinator & { revokedSerial?: string }> {
  const before = await target.federation();
  await target.rotateCoordinatorKey();
  const urls = o.urls ?? before.coordinatorCertificate?.body.urls;
  const done = await certifyCoordinator(target, admin, { urls, days: o.days });
  if (o.revokeOld && before.coordinatorCertificate) {
    await revokeSerials(target, admin, [{ serial: before.coordinatorCertificate.body.serial, subject: 'coordinator (rotated key)', reason: 'coordinator key rotated' }]);
    return { ...done, revokedSerial: before.coordinatorCertificate.body.serial };
  }
  return done;
}

/** Creates a site; checks that its join token names this admin key (a coordinator cannot hand out tokens for another anchor). */
export async function addSite(target: AdminTarget, name: string, admin?: AdminKey): Promise<{ name: string; token: string }> {
  const r = await target.addSite(name);
  if (admin && parseJoinToken(r.token).adminFingerprint !== admin.fingerprint) throw new UsageError(`the coordinator made a join token for admin key ${showFingerprint(parseJoinToken(r.token).adminFingerprint)}, not this admin key ${showFingerprint(admin.fingerprint)}: do not hand it out`);
  return r;
}

export function siteFingerprint(s: Pick<AdminSiteView, 'publicKey' | 'encryptionKey'>): string | null {
  return s.publicKey && s.encryptionKey ? siteKeysFingerprint(s.publicKey, s.encryptionKey) : null;
}

/**
 * Certifies the keys a site enrolled with. `fingerprint`: what `fedmed edge enroll` printed at
 * the hospital, compared here; without it, `confirmed` says the admin compared it by eye.
 */
export async function certifySite(target: AdminTarget, admin: AdminKey, name: string, o: { fingerprint?: string; confirmed?: boolean; days?: number }): Promise<{ fingerprint: string; certificate: SiteCertificate }> {
  await adminTrust(target, admin);
  const site = await target.site(name);
  if (!site) throw new UsageError(`the coordinator has no site "${name}"`);
  if (site.revoked) throw new UsageError(`site "${name}" is revoked`);
  const fp = siteFingerprint(site);
  if (!site.enrolled || !fp) throw new UsageError(`site "${name}" has not enrolled yet (the hospital runs "fedmed edge enroll" with its join token first)`);
  if (o.fingerprint !== undefined) {
    if (parseFingerprint(o.fingerprint) !== fp) throw new UsageError(`site "${name}" enrolled keys with fingerprint ${showFingerprint(fp)}, not ${showFingerprint(parseFingerprint(o.fingerprint))}: NOT certified (someone else may have used the join token)`);
  } else if (!o.confirmed) {
    throw new UsageError(`compare the fingerprint with what "fedmed edge enroll" printed at the site, then give --fingerprint ${showFingerprint(fp)} (or --yes)`);
  }
  const certificate = issueSiteCertificate(admin, { site: name, identityKey: site.publicKey!, encryptionKey: site.encryptionKey!, days: o.days });
  admin.ledger.recordCertificate(certificate);
  await target.certifySite(name, certificate);
  return { fingerprint: fp, certificate };
}

/** A new revocation list with these serials added, signed and installed; returns the sites it revoked. */
export async function revokeSerials(target: AdminTarget, admin: AdminKey, entries: { serial: string; subject: string; reason?: string }[]): Promise<{ sequence: number; revokedSites: string[] }> {
  const trust = await adminTrust(target, admin);
  const list = issueRevocationList(admin, trust.revocations, entries);
  admin.ledger.recordRevocations(list); // (kept first: the admin never loses a list it signed)
  const revokedSites = await target.installRevocations(list);
  return { sequence: list.body.sequence, revokedSites };
}

/**
 * Revokes a site: every certificate the admin ever issued for it (its ledger) and the one the
 * coordinator shows go on a new signed revocation list (its peers refuse it too), and the
 * coordinator refuses it.
 */
export async function revokeSite(target: AdminTarget, admin: AdminKey | null, name: string, reason?: string): Promise<{ sequence: number | null }> {
  const site = await target.site(name);
  if (!site) throw new UsageError(`the coordinator has no site "${name}"`);
  let sequence: number | null = null;
  const serials = new Set([...(admin?.ledger.siteSerials(name) ?? []), ...(site.certificate ? [site.certificate.body.serial] : [])]);
  if (admin && serials.size > 0) sequence = (await revokeSerials(target, admin, [...serials].map((serial) => ({ serial, subject: `site ${name}`, reason })))).sequence;
  if (!site.revoked) await target.revokeSite(name);
  return { sequence };
}
