/**
 * The coordinator's Ed25519 key (DATA_DIR/coordinator-key.pem, mode 0600), created on first
 * start, and key rotation: a next key (coordinator-key.next.pem) is made on request, and becomes
 * the key once the federation admin has certified it (see coordinatorFederation.ts). Sites
 * never pin this key: they accept whichever key the admin's current certificate names.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, loadIdentity, saveIdentity, type Identity } from '../shared/secure/identity.js';

export function loadOrCreateCoordinatorIdentity(dataDir: string): Identity {
  const file = join(dataDir, 'coordinator-key.pem');
  if (existsSync(file)) return loadIdentity(file);
  const identity = generateIdentity();
  saveIdentity(file, identity);
  return identity;
}

export class CoordinatorKeys {
  current: Identity;

  constructor(private readonly dataDir: string) {
    this.current = loadOrCreateCoordinatorIdentity(dataDir);
  }

  private get nextPath(): string {
    return join(this.dataDir, 'coordinator-key.next.pem');
  }

  /** The key waiting for its certificate, if a rotation was started. */
  get next(): Identity | null {
    return existsSync(this.nextPath) ? loadIdentity(this.nextPath) : null;
  }

  /** Starts a rotation: makes the next key (once) and returns it. */
  rotate(): Identity {
    const existing = this.next;
    if (existing) return existing;
    const id = generateIdentity();
    saveIdentity(this.nextPath, id);
    return id;
  }

  /** The next key becomes the key (its certificate has been installed). The old key file is kept as coordinator-key.old.pem. */
  promoteNext(): Identity {
    const next = this.next;
    if (!next) throw new Error('no next coordinator key to promote');
    renameSync(join(this.dataDir, 'coordinator-key.pem'), join(this.dataDir, 'coordinator-key.old.pem'));
    renameSync(this.nextPath, join(this.dataDir, 'coordinator-key.pem'));
    this.current = next;
    return next;
  }
}
