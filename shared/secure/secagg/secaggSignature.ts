/**
 * Signatures on SecAgg+ messages with the site's enrolled Ed25519 identity key: over the
 * canonical JSON of the message without its `signature` field (which includes the experiment,
 * round, session id and message type, so a signature is useless in any other round or phase)
 * and, for the masked vector, the SHA-256 of the payload.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../../model/canonicalJson.js';
import { signMessage, verifyMessage } from '../identity.js';

const DOMAIN = 'fedmed-secagg-v1';

/** `payload` is the payload itself or its SHA-256 (hex) when the caller already computed it. */
function signedText(message: object, payload?: Uint8Array | string): string[] {
  const body = canonicalJson({ ...message, signature: undefined });
  if (payload === undefined) return [body];
  return [body, typeof payload === 'string' ? payload : createHash('sha256').update(payload).digest('hex')];
}

export function signSecAgg(key: KeyObject, site: string, message: object, payload?: Uint8Array | string): string {
  return signMessage(key, DOMAIN, site, ...signedText(message, payload));
}

export function verifySecAgg(key: KeyObject, site: string, message: { signature?: string }, payload?: Uint8Array | string): boolean {
  return typeof message.signature === 'string' && verifyMessage(key, message.signature, DOMAIN, site, ...signedText(message, payload));
}
