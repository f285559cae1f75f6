/**
 * The federation admin key (Ed25519): made and kept on the admin's machine, never in a
 * coordinator's data dir. `fedmed federation init` writes it (0600, never overwriting); the
 * admin commands load it to sign certificates, revocation lists and CKKS key sets.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { UsageError } from '../../errors.js';
import { generateIdentity, loadIdentity, saveIdentity, type Identity } from '../identity.js';
import { AdminLedger } from './adminLedger.js';
import { keyFingerprint } from './fingerprint.js';

export interface AdminKey extends Identity {
  fingerprint: string;
  /** What this admin issued and the newest revocation list it signed (FILE.ledger.json beside the key). */
  ledger: AdminLedger;
}

const ledgerPath = (keyPath: string) => `${keyPath}.ledger.json`;

export function createAdminKeyFile(path: string): AdminKey {
  if (existsSync(path)) throw new UsageError(`${path} exists; an admin key is never overwritten (choose another --admin-key-out)`);
  mkdirSync(dirname(resolve(path)), { recursive: true, mode: 0o700 });
  const id = generateIdentity();
  saveIdentity(path, id);
  return { ...id, fingerprint: keyFingerprint(id.publicKeyB64), ledger: new AdminLedger(ledgerPath(path)) };
}

export function loadAdminKey(path: string): AdminKey {
  const id = loadIdentity(path);
  return { ...id, fingerprint: keyFingerprint(id.publicKeyB64), ledger: new AdminLedger(ledgerPath(path)) };
}

/** An admin key in memory only (simulations, tests, the demo's temporary federation). */
export function ephemeralAdminKey(): AdminKey {
  const id = generateIdentity();
  return { ...id, fingerprint: keyFingerprint(id.publicKeyB64), ledger: new AdminLedger(null) };
}
