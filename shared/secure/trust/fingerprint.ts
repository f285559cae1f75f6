/**
 * Fingerprints people compare out of band: SHA-256 of a raw public key, base64url (43
 * characters), shown as `SHA256:...` like OpenSSH does. The admin key's fingerprint rides in
 * every join token; a site's fingerprint covers both its identity and its encryption key.
 */
import { createHash } from 'node:crypto';

const b64 = (s: string): Buffer => Buffer.from(s, 'base64url');

/** Fingerprint of one raw 32-byte public key given as base64url. */
export function keyFingerprint(publicKeyB64: string): string {
  return createHash('sha256').update(b64(publicKeyB64)).digest('base64url');
}

/** One fingerprint for a site's two public keys (what `edge enroll` prints and `site certify` checks). */
export function siteKeysFingerprint(identityKeyB64: string, encryptionKeyB64: string): string {
  return createHash('sha256').update('fedmed-site-keys-v1\n').update(b64(identityKeyB64)).update(b64(encryptionKeyB64)).digest('base64url');
}

/** How a fingerprint is printed. */
export function showFingerprint(fp: string): string {
  return `SHA256:${fp}`;
}

/** Accepts a fingerprint with or without the `SHA256:` prefix. */
export function parseFingerprint(text: string): string {
  return text.trim().replace(/^SHA256:/i, '');
}
