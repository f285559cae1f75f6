/**
 * What the federation admin keeps beside the admin key (FILE.ledger.json, 0600): every
 * certificate it issued and the newest revocation list it signed. The admin tools check the
 * coordinator against it instead of taking its word: a coordinator that presents an older list
 * (to hide a revocation) gets the admin's own list installed again, and revoking a site revokes
 * every certificate ever issued for it, not only the one the coordinator shows.
 */
import { existsSync, readFileSync } from 'node:fs';
import { writeFileAtomic } from '../../atomicFile.js';
import type { CoordinatorCertificate, RevocationList, SiteCertificate } from './certificates.js';

export interface IssuedCertificate {
  serial: string;
  kind: 'coordinator' | 'site';
  /** The site's name, or the coordinator's key. */
  subject: string;
  notAfter: string;
}

interface LedgerData {
  format: 'fedmed.admin-ledger/1';
  issued: IssuedCertificate[];
  revocations: RevocationList | null;
}

export class AdminLedger {
  private data: LedgerData;

  /** `path` null: kept in memory only (an admin key that lives only in a simulation or a test). */
  constructor(private readonly path: string | null) {
    this.data = path && existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as LedgerData) : { format: 'fedmed.admin-ledger/1', issued: [], revocations: null };
  }

  get revocations(): RevocationList | null {
    return this.data.revocations;
  }

  /** Serials issued to a site (every one of them, renewals included). */
  siteSerials(site: string): string[] {
    return this.data.issued.filter((c) => c.kind === 'site' && c.subject === site).map((c) => c.serial);
  }

  recordCertificate(c: CoordinatorCertificate | SiteCertificate): void {
    const b = c.body;
    const entry: IssuedCertificate = 'site' in b ? { serial: b.serial, kind: 'site', subject: b.site, notAfter: b.notAfter } : { serial: b.serial, kind: 'coordinator', subject: b.publicKey, notAfter: b.notAfter };
    this.data.issued.push(entry);
    this.save();
  }

  /** Keeps a newer list (one the admin signed). */
  recordRevocations(list: RevocationList): void {
    if (list.body.sequence > (this.data.revocations?.body.sequence ?? 0)) {
      this.data.revocations = list;
      this.save();
    }
  }

  private save(): void {
    if (this.path) writeFileAtomic(this.path, Buffer.from(`${JSON.stringify(this.data, null, 2)}\n`), 0o600);
  }
}
