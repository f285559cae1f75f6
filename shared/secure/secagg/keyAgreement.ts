/**
 * X25519 key pairs for SecAgg+ (node:crypto) in raw 32-byte form for the wire and for Shamir
 * sharing, Diffie–Hellman agreement, and HKDF-SHA256 derivation of the 256-bit keys the
 * protocol uses, each bound to the round's session id and to the ordered pair of sites.
 */
import { createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, type KeyObject } from 'node:crypto';
import { SecAggProtocolError } from './secaggErrors.js';

// DER prefixes of X25519 keys (RFC 8410): the raw 32 bytes follow them.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

export interface X25519KeyPair {
  privateKey: KeyObject;
  /** Raw private key (32 bytes): what gets Shamir-shared. */
  privateRaw: Buffer;
  /** Raw public key, base64url (43 characters). */
  publicB64: string;
}

export function generateX25519(): X25519KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const der = privateKey.export({ format: 'der', type: 'pkcs8' });
  return { privateKey, privateRaw: Buffer.from(der.subarray(der.length - 32)), publicB64: rawPublic(publicKey).toString('base64url') };
}

function rawPublic(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - 32));
}

export function x25519PrivateFromRaw(raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new SecAggProtocolError(`X25519 private key must be 32 bytes, got ${raw.length}`);
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
}

export function x25519PublicFromB64(b64: string, what = 'X25519 public key'): KeyObject {
  const raw = Buffer.from(b64, 'base64url');
  if (raw.length !== 32 || raw.toString('base64url') !== b64) throw new SecAggProtocolError(`${what} must be 32 bytes of base64url`);
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** Raw public key (base64url) of a private key: used to check a reconstructed key against the advertised one. */
export function publicB64Of(privateKey: KeyObject): string {
  return rawPublic(createPublicKey(privateKey)).toString('base64url');
}

/**
 * The 256-bit key two sites share for `purpose` in a session: HKDF-SHA256 over their X25519
 * agreement, salted with the session id and bound to the purpose and the ordered site pair, so
 * the same DH secret never yields the same key twice.
 */
export function pairKey(privateKey: KeyObject, peerPublic: KeyObject, session: string, purpose: 'mask' | 'share', a: string, b: string): Buffer {
  const secret = diffieHellman({ privateKey, publicKey: peerPublic });
  const [lo, hi] = a < b ? [a, b] : [b, a];
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from(session, 'utf8'), Buffer.from(`fedmed-secagg-${purpose}\n${lo}\n${hi}`, 'utf8'), 32));
}

/** The self-mask key of a site from its 32-byte seed (the seed itself is what gets shared). */
export function selfMaskKey(seed: Uint8Array, session: string, site: string): Buffer {
  return Buffer.from(hkdfSync('sha256', seed, Buffer.from(session, 'utf8'), Buffer.from(`fedmed-secagg-self\n${site}`, 'utf8'), 32));
}

/** Public commitment to a self-mask seed: lets the coordinator check a reconstructed seed. */
export function seedCommitment(seed: Uint8Array, session: string, site: string): string {
  return createHash('sha256').update(`fedmed-secagg-seed-commitment\n${session}\n${site}\n`).update(seed).digest('base64url');
}
