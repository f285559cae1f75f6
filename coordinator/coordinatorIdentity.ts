/** The coordinator's Ed25519 key (DATA_DIR/coordinator-key.pem, mode 0600), created on first start. */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, loadIdentity, saveIdentity, type Identity } from '../shared/secure/identity.js';

export function loadOrCreateCoordinatorIdentity(dataDir: string): Identity {
  const file = join(dataDir, 'coordinator-key.pem');
  if (existsSync(file)) return loadIdentity(file);
  const identity = generateIdentity();
  saveIdentity(file, identity);
  return identity;
}
