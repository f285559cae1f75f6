/**
 * The coordinator's receipt for an enrolment: its signature, with its certified key, over the
 * site name and the two public keys it registered. The enrolling site checks it against the
 * key of the certificate it verified, so an answer from anyone else is refused.
 */
import type { KeyObject } from 'node:crypto';
import { signMessage, verifyMessage } from '../identity.js';

const DOMAIN = 'fedmed-enrolment-receipt-v1';

export interface EnrolledKeys {
  site: string;
  identityKey: string;
  encryptionKey: string;
}

export function signEnrolmentReceipt(coordinatorKey: KeyObject, k: EnrolledKeys): string {
  return signMessage(coordinatorKey, DOMAIN, k.site, k.identityKey, k.encryptionKey);
}

export function verifyEnrolmentReceipt(coordinatorKey: KeyObject, k: EnrolledKeys, signature: string): boolean {
  return verifyMessage(coordinatorKey, signature, DOMAIN, k.site, k.identityKey, k.encryptionKey);
}
