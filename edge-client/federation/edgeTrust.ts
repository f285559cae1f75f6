/**
 * The trust an edge holds itself, independent of what any coordinator says: the federation
 * admin's public key it pinned at enrolment (from the join token's fingerprint) and the newest
 * admin-signed revocation list it has seen (STATE_DIR/trust/revocations.json, kept across
 * restarts, so a coordinator cannot un-revoke anyone by replaying an older list). Every
 * certificate the edge is shown goes through here.
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import type { RevocationList } from '../../shared/secure/trust/certificates.js';
import { FederationTrust } from '../../shared/secure/trust/federationTrust.js';

export class EdgeTrust extends FederationTrust {
  private readonly file: string;

  constructor(stateDir: string, adminPublicKey: string) {
    const file = join(stateDir, 'trust', 'revocations.json');
    super(adminPublicKey, existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as RevocationList) : null);
    this.file = file;
  }

  /** Takes a newer list and keeps it on disk (fsynced by the atomic write's rename) before anything relies on it. */
  override acceptRevocations(doc: unknown): boolean {
    const newer = super.acceptRevocations(doc);
    if (newer) {
      mkdirSync(join(this.file, '..'), { recursive: true, mode: 0o700 });
      writeFileAtomic(this.file, Buffer.from(JSON.stringify(doc)), 0o600);
    }
    return newer;
  }
}
