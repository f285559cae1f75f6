/**
 * A site's X25519 key for receiving secrets (the CKKS secret key, wrapped by the admin): kept in
 * the site's state folder (0600); its public half is registered at enrolment and named in the
 * site's admin-signed certificate, which is what the admin wraps to.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../atomicFile.js';
import { CkksError } from './ckksErrors.js';

const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface SiteEncryptionKey {
  privateKey: KeyObject;
  /** Raw 32-byte X25519 public key, base64url. */
  publicB64: string;
}

export function x25519PublicB64(key: KeyObject): string {
  const der = (key.type === 'public' ? key : createPublicKey(key)).export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32)).toString('base64url');
}

export function x25519FromB64(b64: string, what = 'encryption key'): KeyObject {
  const raw = Buffer.from(b64, 'base64url');
  if (raw.length !== 32 || raw.toString('base64url') !== b64) throw new CkksError(`${what} must be 32 bytes of base64url`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** A new encryption key, in memory (saveEncryptionKey keeps it). */
export function generateEncryptionKey(): SiteEncryptionKey {
  const { privateKey } = generateKeyPairSync('x25519');
  return { privateKey, publicB64: x25519PublicB64(privateKey) };
}

export function saveEncryptionKey(path: string, key: SiteEncryptionKey): void {
  writeFileAtomic(path, Buffer.from(key.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), 0o600);
}

/** Loads the key at `path` (made at enrolment; the admin's certificate names its public half). */
export function loadEncryptionKey(path: string): SiteEncryptionKey {
  if (!existsSync(path)) throw new CkksError(`${path} is missing: this site's encryption key is made at enrolment and certified with it; enrol the site again`);
  const privateKey = createPrivateKey(readFileSync(path, 'utf8'));
  if (privateKey.asymmetricKeyType !== 'x25519') throw new CkksError(`${path} is not an X25519 key`);
  return { privateKey, publicB64: x25519PublicB64(privateKey) };
}
