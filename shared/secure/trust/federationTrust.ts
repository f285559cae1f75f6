/**
 * Checks what the federation admin signed against the admin key a party pinned (a site at
 * enrolment, from its join token's fingerprint; the coordinator when it was certified): the
 * coordinator's certificate, site certificates, revocation lists and CKKS key sets. Everything
 * is refused with a TrustError naming the reason: forged or from another federation, expired,
 * revoked, for another subject, or a revocation list older than the one held.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { publicKeyFromB64, verifyMessage } from '../identity.js';
import { CKKS_KEY_GRANT, CKKS_KEY_SET, checkShape, COORDINATOR_CERTIFICATE, REVOCATION_LIST, SITE_CERTIFICATE, signedText, urlOrigin, type CkksKeyGrantBody, type CkksKeySetBody, type CoordinatorCertificateBody, type DocumentKind, type RevocationList, type Signed, type SiteCertificateBody } from './certificates.js';
import { keyFingerprint } from './fingerprint.js';
import { TrustError } from './trustError.js';

/** When a certificate is checked (default: now). */
export interface AtTime {
  at?: number;
}

export class FederationTrust {
  readonly adminKey: KeyObject;
  /** Fingerprint of the admin key: the federation's name in every signed body. */
  readonly federation: string;
  private list: RevocationList | null = null;
  private revoked = new Set<string>();
  /** Signed texts already verified (a roster or a site list shows the same certificates again and again). */
  private readonly verifiedTexts = new Set<string>();

  constructor(
    readonly adminPublicKey: string,
    revocations?: RevocationList | null,
  ) {
    this.adminKey = publicKeyFromB64(adminPublicKey);
    this.federation = keyFingerprint(adminPublicKey);
    // (not through acceptRevocations: a subclass's override must not run before its constructor)
    if (revocations) this.take(revocations);
  }

  /** The revocation list held (the newest accepted), or null. */
  get revocations(): RevocationList | null {
    return this.list;
  }

  get revocationSequence(): number {
    return this.list?.body.sequence ?? 0;
  }

  isRevoked(serial: string): boolean {
    return this.revoked.has(serial);
  }

  /**
   * Takes a newer revocation list; returns false for the one already held. Throws for a forged
   * list and for one older than the one held (a coordinator replaying an old list to un-revoke).
   */
  acceptRevocations(doc: unknown): boolean {
    return this.take(doc);
  }

  private take(doc: unknown): boolean {
    const list = this.verified(REVOCATION_LIST, doc, 'revocation list');
    const held = this.revocationSequence;
    if (list.body.sequence < held) throw new TrustError('stale', `revocation list ${list.body.sequence} is older than list ${held} this party already holds (replayed or stale)`);
    if (list.body.sequence === held) {
      if (this.list && this.list.signature !== list.signature) throw new TrustError('forged', `two different revocation lists carry sequence ${held}`);
      return false;
    }
    this.list = list;
    this.revoked = new Set(list.body.revoked.map((r) => r.serial));
    return true;
  }

  /** A coordinator certificate valid now for `url` (when given). */
  coordinator(doc: unknown, o: AtTime & { url?: string } = {}): CoordinatorCertificateBody {
    const c = this.certificate(COORDINATOR_CERTIFICATE, doc, 'coordinator certificate', o.at).body;
    if (o.url !== undefined) {
      const origin = urlOrigin(o.url);
      if (!c.urls.map((u) => safeOrigin(u)).includes(origin)) throw new TrustError('wrong_subject', `the coordinator certificate is for ${c.urls.join(', ')}, not ${origin}`);
    }
    return c;
  }

  /** A site certificate valid now (for `site`, when given). */
  site(doc: unknown, o: AtTime & { site?: string } = {}): SiteCertificateBody {
    const c = this.certificate(SITE_CERTIFICATE, doc, `site certificate${o.site ? ` of ${o.site}` : ''}`, o.at).body;
    if (o.site !== undefined && c.site !== o.site) throw new TrustError('wrong_subject', `the certificate presented for site ${o.site} is for site ${c.site}`);
    return c;
  }

  /** An admin-signed CKKS key set with this id. */
  keySet(doc: unknown, keySet: string): CkksKeySetBody {
    const k = this.verified(CKKS_KEY_SET, doc, `CKKS key set ${keySet}`).body;
    if (k.keySet !== keySet) throw new TrustError('wrong_subject', `the signed key set is ${k.keySet}, not ${keySet}`);
    return k;
  }

  /** An admin-signed grant of `keySet` wrapped (these exact bytes) to this site's encryption key. */
  keyGrant(doc: unknown, o: { keySet: string; site: string; encryptionKey: string; wrapped: Uint8Array }): CkksKeyGrantBody {
    const g = this.verified(CKKS_KEY_GRANT, doc, `grant of CKKS key set ${o.keySet}`).body;
    if (g.keySet !== o.keySet || g.site !== o.site) throw new TrustError('wrong_subject', `the key grant is for key set ${g.keySet} and site ${g.site}, not ${o.keySet} and ${o.site}`);
    if (g.encryptionKey !== o.encryptionKey) throw new TrustError('wrong_subject', `the key was granted to encryption key ${g.encryptionKey}, not this site's ${o.encryptionKey}`);
    const sha = createHash('sha256').update(o.wrapped).digest('hex');
    if (sha !== g.wrappedSha256) throw new TrustError('forged', `the wrapped key's bytes (sha256 ${sha.slice(0, 12)}…) are not the ones the admin granted (${g.wrappedSha256.slice(0, 12)}…)`);
    return g;
  }

  private certificate<K extends typeof COORDINATOR_CERTIFICATE | typeof SITE_CERTIFICATE>(kind: K, doc: unknown, what: string, at = Date.now()) {
    const c = this.verified(kind, doc, what);
    const b = c.body;
    const notBefore = Date.parse(b.notBefore);
    const notAfter = Date.parse(b.notAfter);
    if (!Number.isFinite(notBefore) || !Number.isFinite(notAfter)) throw new TrustError('malformed', `${what} has unreadable validity dates`);
    if (at < notBefore) throw new TrustError('not_yet_valid', `${what} (serial ${b.serial}) is valid only from ${b.notBefore}`);
    if (at > notAfter) throw new TrustError('expired', `${what} (serial ${b.serial}) expired at ${b.notAfter}`);
    if (this.revoked.has(b.serial)) throw new TrustError('revoked', `${what} (serial ${b.serial}) is revoked by the federation admin (revocation list ${this.revocationSequence})`);
    return c;
  }

  /** Shape, federation and signature; nothing about time or revocation. */
  private verified<K extends DocumentKind>(kind: K, doc: unknown, what: string) {
    const d = checkShape(kind, doc, what);
    if (d.body.federation !== this.federation) throw new TrustError('forged', `${what} belongs to another federation (admin key ${d.body.federation.slice(0, 12)}…, pinned ${this.federation.slice(0, 12)}…)`);
    const [domain, text] = signedText(d.body as { kind: string });
    const memo = `${d.signature}\n${text}`;
    if (!this.verifiedTexts.has(memo)) {
      if (!verifyMessage(this.adminKey, d.signature, domain, text)) throw new TrustError('forged', `${what} is not signed by the federation admin key (forged or altered)`);
      if (this.verifiedTexts.size >= 10_000) this.verifiedTexts.clear();
      this.verifiedTexts.add(memo);
    }
    return d as Signed<typeof d.body>;
  }
}

function safeOrigin(u: string): string {
  try {
    return urlOrigin(u);
  } catch {
    return '';
  }
}
