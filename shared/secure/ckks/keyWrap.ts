/**
 * Wrapping the CKKS secret key for one site (ECIES over X25519): a fresh ephemeral key agrees a
 * secret with the site's encryption key, HKDF-SHA256 (salted with the key set id, bound to the
 * site's name) derives an AES-256-GCM key, and the key set id and site name are authenticated
 * data. Only that site can unwrap it, and a wrapped key moved to another site or key set fails.
 * Layout: `FMKW` | u8 version | ephemeral public key (32) | IV (12) | tag (16) | ciphertext.
 */
import { createCipheriv, createDecipheriv, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { CkksError } from './ckksErrors.js';
import { x25519FromB64, x25519PublicB64 } from './siteEncryptionKey.js';

const MAGIC = Buffer.from('FMKW', 'latin1');
const VERSION = 1;
const HEADER = 4 + 1 + 32 + 12 + 16;

function wrapKey(secret: Buffer, keySet: string, site: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.from(keySet, 'utf8'), Buffer.from(`fedmed-ckks-key-wrap-v1\n${site}`, 'utf8'), 32));
}

function aad(keySet: string, site: string): Buffer {
  return Buffer.from(`fedmed-ckks-key-wrap-v1\n${keySet}\n${site}`, 'utf8');
}

export function wrapSecretKey(secretKey: Uint8Array, siteEncryptionKeyB64: string, keySet: string, site: string): Uint8Array {
  const recipient = x25519FromB64(siteEncryptionKeyB64, `encryption key of site ${site}`);
  const eph = generateKeyPairSync('x25519');
  const key = wrapKey(diffieHellman({ privateKey: eph.privateKey, publicKey: recipient }), keySet, site);
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad(keySet, site));
  const body = Buffer.concat([cipher.update(secretKey), cipher.final()]);
  return Buffer.concat([MAGIC, Buffer.from([VERSION]), Buffer.from(x25519PublicB64(eph.publicKey), 'base64url'), iv, cipher.getAuthTag(), body]);
}

export function unwrapSecretKey(wrapped: Uint8Array, privateKey: KeyObject, keySet: string, site: string): Buffer {
  const b = Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength);
  if (b.length <= HEADER || !b.subarray(0, 4).equals(MAGIC) || b[4] !== VERSION) throw new CkksError(`the wrapped CKKS key for key set ${keySet} is malformed`);
  const eph = x25519FromB64(b.subarray(5, 37).toString('base64url'), 'ephemeral key of the wrapped CKKS key');
  const key = wrapKey(diffieHellman({ privateKey, publicKey: eph }), keySet, site);
  const decipher = createDecipheriv('aes-256-gcm', key, b.subarray(37, 49));
  decipher.setAAD(aad(keySet, site));
  decipher.setAuthTag(b.subarray(49, 65));
  try {
    return Buffer.concat([decipher.update(b.subarray(HEADER)), decipher.final()]);
  } catch {
    throw new CkksError(`the wrapped CKKS key for key set ${keySet} does not open with this site's encryption key (wrapped for another site or key, or tampered with)`);
  }
}
