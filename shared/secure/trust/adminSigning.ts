/**
 * What the federation admin's key signs (run on the admin's machine; see certificates.ts for
 * the documents). Pure functions: the admin commands (cli/admin/) fetch what to sign from the
 * coordinator, show it to the admin, sign it here and upload the result.
 */
import { createHash } from 'node:crypto';
import type { CkksParameters } from '../ckks/ckksParams.js';
import type { AdminKey } from './adminKey.js';
import { CKKS_KEY_GRANT, CKKS_KEY_SET, COORDINATOR_CERTIFICATE, newSerial, REVOCATION_LIST, signDocument, SITE_CERTIFICATE, urlOrigin, validityFor, type CkksKeyGrant, type CkksKeySetCertificate, type CoordinatorCertificate, type RevocationList, type RevokedEntry, type SiteCertificate } from './certificates.js';

/** Default validity of certificates, in days. */
export const DEFAULT_CERTIFICATE_DAYS = 365;

export function issueCoordinatorCertificate(admin: AdminKey, o: { publicKey: string; urls: string[]; days?: number }): CoordinatorCertificate {
  return signDocument(admin.privateKey, { kind: COORDINATOR_CERTIFICATE, federation: admin.fingerprint, serial: newSerial(), ...validityFor(o.days ?? DEFAULT_CERTIFICATE_DAYS), publicKey: o.publicKey, urls: [...new Set(o.urls.map(urlOrigin))] });
}

export function issueSiteCertificate(admin: AdminKey, o: { site: string; identityKey: string; encryptionKey: string; days?: number }): SiteCertificate {
  return signDocument(admin.privateKey, { kind: SITE_CERTIFICATE, federation: admin.fingerprint, serial: newSerial(), ...validityFor(o.days ?? DEFAULT_CERTIFICATE_DAYS), site: o.site, identityKey: o.identityKey, encryptionKey: o.encryptionKey });
}

/** The next revocation list: the previous entries (if any) plus `add`, sequence + 1. */
export function issueRevocationList(admin: AdminKey, previous: RevocationList | null, add: Omit<RevokedEntry, 'revokedAt'>[]): RevocationList {
  const now = new Date().toISOString();
  const entries = [...(previous?.body.revoked ?? [])];
  for (const a of add) if (!entries.some((e) => e.serial === a.serial)) entries.push({ ...a, revokedAt: now });
  return signDocument(admin.privateKey, { kind: REVOCATION_LIST, federation: admin.fingerprint, sequence: (previous?.body.sequence ?? 0) + 1, issuedAt: now, revoked: entries });
}

export function issueKeySetCertificate(admin: AdminKey, keySet: string, parameters: CkksParameters): CkksKeySetCertificate {
  return signDocument(admin.privateKey, { kind: CKKS_KEY_SET, federation: admin.fingerprint, keySet, parameters, issuedAt: new Date().toISOString() });
}

export function issueKeyGrant(admin: AdminKey, o: { keySet: string; site: string; encryptionKey: string; wrapped: Uint8Array }): CkksKeyGrant {
  return signDocument(admin.privateKey, { kind: CKKS_KEY_GRANT, federation: admin.fingerprint, keySet: o.keySet, site: o.site, encryptionKey: o.encryptionKey, wrappedSha256: createHash('sha256').update(o.wrapped).digest('hex'), issuedAt: new Date().toISOString() });
}
