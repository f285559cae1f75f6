/**
 * Ed25519 identities (node:crypto): key pairs for sites and the coordinator, signatures over
 * domain-separated messages, and compact base64url public keys for the wire and the store.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FedmedError } from '../errors.js';
import { writeFileAtomic } from '../atomicFile.js';

export class IdentityError extends FedmedError {
  constructor(message: string) {
    super('IDENTITY', message);
  }
}

export interface Identity {
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** Raw 32-byte public key, base64url. */
  publicKeyB64: string;
}

export function generateIdentity(): Identity {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, publicKey, publicKeyB64: publicKeyToB64(publicKey) };
}

export function publicKeyToB64(key: KeyObject): string {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new IdentityError('not an Ed25519 public key');
  return jwk.x;
}

export function publicKeyFromB64(b64: string): KeyObject {
  if (typeof b64 !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(b64)) throw new IdentityError('public key must be 32 bytes of base64url (43 characters)');
  try {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64 }, format: 'jwk' });
  } catch {
    throw new IdentityError('invalid Ed25519 public key');
  }
}

/** Signs `parts` joined with a domain tag, so a signature for one purpose is useless for another. */
export function signMessage(key: KeyObject, domain: string, ...parts: string[]): string {
  return sign(null, Buffer.from([domain, ...parts].join('\n'), 'utf8'), key).toString('base64url');
}

export function verifyMessage(key: KeyObject, signature: string, domain: string, ...parts: string[]): boolean {
  if (typeof signature !== 'string' || signature.length > 128) return false;
  try {
    return verify(null, Buffer.from([domain, ...parts].join('\n'), 'utf8'), key, Buffer.from(signature, 'base64url'));
  } catch {
    return false;
  }
}

/** Saves the private key as PKCS#8 PEM with mode 0600 (only the service user can read it). */
export function saveIdentity(path: string, identity: Identity): void {
  writeFileAtomic(path, Buffer.from(identity.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string), 0o600);
}

export function loadIdentity(path: string): Identity {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new IdentityError(`${path}: cannot read key (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const privateKey = createPrivateKey(pem);
    const publicKey = createPublicKey(privateKey);
    return { privateKey, publicKey, publicKeyB64: publicKeyToB64(publicKey) };
  } catch {
    throw new IdentityError(`${path}: not an Ed25519 private key in PEM format`);
  }
}
