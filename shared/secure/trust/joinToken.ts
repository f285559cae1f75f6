/**
 * Join tokens: `fmj_<secret>.<admin key fingerprint>`. The secret is the one-time enrolment
 * credential (the coordinator stores its hash); the fingerprint lets the enrolling site pin the
 * federation admin's key without trusting whatever the coordinator says (no trust on first use).
 */
import { UsageError } from '../../errors.js';

export interface JoinToken {
  /** `fmj_...`: what the coordinator checks. */
  secret: string;
  /** SHA-256 fingerprint (base64url) of the federation admin's public key. */
  adminFingerprint: string;
}

const SECRET = /^fmj_[A-Za-z0-9_-]{43}$/;
const FINGERPRINT = /^[A-Za-z0-9_-]{43}$/;

export function formatJoinToken(secret: string, adminFingerprint: string): string {
  if (!SECRET.test(secret) || !FINGERPRINT.test(adminFingerprint)) throw new UsageError('not a join token secret or admin fingerprint');
  return `${secret}.${adminFingerprint}`;
}

export function parseJoinToken(token: string): JoinToken {
  const t = token.trim();
  const dot = t.lastIndexOf('.');
  const secret = dot < 0 ? t : t.slice(0, dot);
  const fp = dot < 0 ? '' : t.slice(dot + 1);
  if (!SECRET.test(secret)) throw new UsageError('not a join token (expected fmj_<secret>.<fingerprint>, as printed by "fedmed site add")');
  if (!FINGERPRINT.test(fp)) throw new UsageError('this join token carries no federation admin fingerprint (expected fmj_<secret>.<fingerprint>); ask the federation admin for a token made after the coordinator was certified');
  return { secret, adminFingerprint: fp };
}
