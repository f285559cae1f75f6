/**
 * Shamir shares in transit: a site's shares of its self-mask seed and its mask private key for
 * one neighbour, sealed with AES-256-GCM under the pair's `share` key. The additional data binds
 * the session and the ordered (sender, recipient) pair, so a box cannot be replayed into another
 * round or redirected to another site; the coordinator relays boxes it cannot read or alter.
 *
 * Box: nonce (12) ‖ ciphertext of seedShare (33) ‖ keyShare (33) ‖ tag (16), base64url.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { SecAggProtocolError } from './secaggErrors.js';

/** A share from shamir-secret-sharing: 32 bytes of secret-sized data plus the x coordinate. */
export const SHARE_BYTES = 33;

function aad(session: string, from: string, to: string): Buffer {
  return Buffer.from(`fedmed-secagg-share-box\n${session}\n${from}\n${to}`, 'utf8');
}

export function sealShares(key: Uint8Array, session: string, from: string, to: string, seedShare: Uint8Array, keyShare: Uint8Array): string {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad(session, from, to));
  const body = Buffer.concat([cipher.update(seedShare), cipher.update(keyShare), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64url');
}

export function openShares(key: Uint8Array, session: string, from: string, to: string, box: string): { seedShare: Uint8Array; keyShare: Uint8Array } {
  const raw = Buffer.from(box, 'base64url');
  if (raw.length !== 12 + 2 * SHARE_BYTES + 16) throw new SecAggProtocolError(`share box from ${from} has ${raw.length} bytes, expected ${12 + 2 * SHARE_BYTES + 16}`, from);
  const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, 12));
  decipher.setAAD(aad(session, from, to));
  decipher.setAuthTag(raw.subarray(raw.length - 16));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(raw.subarray(12, raw.length - 16)), decipher.final()]);
  } catch {
    throw new SecAggProtocolError(`share box from ${from} failed authentication (tampered, truncated or not meant for ${to})`, from);
  }
  return { seedShare: plain.subarray(0, SHARE_BYTES), keyShare: plain.subarray(SHARE_BYTES) };
}
