/**
 * Signed audit chain heads, the cross-site anchor of the audit logs (auditChain.ts): the
 * coordinator signs the head of its log (the seq and `hash` of its last entry, and when) with its
 * certified Ed25519 key and sends it to the sites; each site signs the head of its own log with
 * its enrolled identity key and sends it to the coordinator. Each side records the other's
 * signed heads in its own log (`coordinator_head.received`, `site_head.received`), so neither can
 * rewrite its history afterwards without the other's copy disagreeing (auditCrossCheck.ts).
 *
 * What is signed (Ed25519, shared/secure/identity.ts signMessage, domain-separated):
 *   "fedmed-audit-head-v1" \n SIGNER \n SEQ \n HASH \n AT
 * SIGNER is `coordinator` or `site:<name>`, so a site's head cannot pass for the coordinator's or
 * another site's. The same bytes are checked on receipt and, offline, by `fedmed audit cross-check`.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { signMessage, verifyMessage } from '../secure/identity.js';

export const AUDIT_HEAD_DOMAIN = 'fedmed-audit-head-v1';

/** A chain head as it travels (the `audit_head` message's fields) and as it is recorded. */
export interface SignedHead {
  seq: number;
  hash: string;
  /** ISO time the head was signed. */
  at: string;
  /** base64url Ed25519 signature (86 characters). */
  signature: string;
}

export type HeadSigner = { kind: 'coordinator' } | { kind: 'site'; site: string };

export const signerText = (s: HeadSigner): string => (s.kind === 'coordinator' ? 'coordinator' : `site:${s.site}`);

export function signHead(key: KeyObject, signer: HeadSigner, head: { seq: number; hash: string }, at = new Date().toISOString()): SignedHead {
  return { seq: head.seq, hash: head.hash, at, signature: signMessage(key, AUDIT_HEAD_DOMAIN, signerText(signer), String(head.seq), head.hash, at) };
}

export function verifyHead(key: KeyObject, signer: HeadSigner, h: SignedHead): boolean {
  return verifyMessage(key, h.signature, AUDIT_HEAD_DOMAIN, signerText(signer), String(h.seq), h.hash, h.at);
}

/** A public key named by a short hash (what audit entries record: no key material in the log). */
export const keyId = (publicKeyB64: string): string => `sha256:${createHash('sha256').update(publicKeyB64).digest('hex').slice(0, 16)}`;
