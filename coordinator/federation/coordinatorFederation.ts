/**
 * The coordinator's view of its federation: the admin's public key and this coordinator's
 * admin-signed certificate (installed by `fedmed federation certify-coordinator`), the newest
 * admin-signed revocation list, and the admin's certificates of each site. The coordinator
 * checks everything it is given against the admin key too (it refuses a certificate for
 * another key, a list older than the one it holds), but sites never take its word for any of
 * it: they check the same signatures against the admin key they pinned themselves.
 */
import type { KeyObject } from 'node:crypto';
import { FedmedError } from '../../shared/errors.js';
import { publicKeyFromB64 } from '../../shared/secure/identity.js';
import type { CoordinatorCertificate, RevocationList, SiteCertificate } from '../../shared/secure/trust/certificates.js';
import { FederationTrust } from '../../shared/secure/trust/federationTrust.js';
import { keyFingerprint } from '../../shared/secure/trust/fingerprint.js';
import { TrustError } from '../../shared/secure/trust/trustError.js';
import type { CoordinatorKeys } from '../coordinatorIdentity.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { SiteRecord } from '../store/storeSchema.js';

export class FederationError extends FedmedError {
  constructor(
    message: string,
    readonly status: 400 | 404 | 409 = 409,
  ) {
    super('FEDERATION', message);
  }
}

/** What anyone may read (GET /v1/federation): public keys and signed documents only. */
export interface FederationView {
  adminPublicKey: string | null;
  adminFingerprint: string | null;
  coordinatorPublicKey: string;
  /** A key made by a rotation, waiting for its certificate. */
  nextCoordinatorPublicKey: string | null;
  coordinatorCertificate: CoordinatorCertificate | null;
  revocations: RevocationList | null;
}

export class CoordinatorFederation {
  private trustCache: FederationTrust | null = null;
  /** Called after a newer revocation list was accepted, with the sites it revoked. */
  onRevocations: (list: RevocationList, revokedSites: string[]) => void = () => {};

  constructor(
    private readonly store: CoordinatorStore,
    readonly keys: CoordinatorKeys,
  ) {}

  /** The admin key's verifier with the held revocation list (null until certified). */
  get trust(): FederationTrust | null {
    const f = this.store.data.federation;
    if (!f) return null;
    if (!this.trustCache || this.trustCache.adminPublicKey !== f.adminPublicKey || this.trustCache.revocationSequence !== (f.revocations?.body.sequence ?? 0)) {
      this.trustCache = new FederationTrust(f.adminPublicKey, f.revocations);
    }
    return this.trustCache;
  }

  get certificate(): CoordinatorCertificate | null {
    return this.store.data.federation?.coordinatorCertificate ?? null;
  }

  /** The key challenges, manifests and updates are signed with. */
  get signingKey(): KeyObject {
    return this.keys.current.privateKey;
  }

  get adminFingerprint(): string | null {
    const f = this.store.data.federation;
    return f ? keyFingerprint(f.adminPublicKey) : null;
  }

  view(): FederationView {
    const f = this.store.data.federation;
    return {
      adminPublicKey: f?.adminPublicKey ?? null,
      adminFingerprint: this.adminFingerprint,
      coordinatorPublicKey: this.keys.current.publicKeyB64,
      nextCoordinatorPublicKey: this.keys.next?.publicKeyB64 ?? null,
      coordinatorCertificate: f?.coordinatorCertificate ?? null,
      revocations: f?.revocations ?? null,
    };
  }

  /**
   * Installs the admin's certificate of this coordinator's key, or of the next key (which then
   * becomes the key). The first certificate also sets the federation's admin key; later ones
   * must be signed by that same key.
   */
  async installCertificate(certificate: unknown, adminPublicKey?: string): Promise<{ rotated: boolean }> {
    const held = this.store.data.federation;
    const admin = held?.adminPublicKey ?? adminPublicKey;
    if (!admin) throw new FederationError('the first coordinator certificate must come with the admin public key', 400);
    if (held && adminPublicKey && adminPublicKey !== held.adminPublicKey) throw new FederationError(`this coordinator already belongs to the federation of admin key ${keyFingerprint(held.adminPublicKey)}; a certificate from another admin key is refused`);
    publicKeyFromB64(admin);
    const trust = new FederationTrust(admin, held?.revocations);
    let cert;
    try {
      cert = trust.coordinator(certificate);
    } catch (err) {
      if (err instanceof TrustError) throw new FederationError(`coordinator certificate refused: ${err.message}`, 400);
      throw err;
    }
    const next = this.keys.next;
    const rotated = cert.publicKey !== this.keys.current.publicKeyB64;
    if (rotated && cert.publicKey !== next?.publicKeyB64) throw new FederationError(`the certificate is for key ${cert.publicKey}, which is neither this coordinator's key (${this.keys.current.publicKeyB64}) nor its next key`, 400);
    if (rotated) this.keys.promoteNext();
    await this.store.update((d) => {
      d.federation = { adminPublicKey: admin, coordinatorCertificate: certificate as CoordinatorCertificate, revocations: held?.revocations ?? null };
    });
    return { rotated };
  }

  /** Takes a newer admin-signed revocation list; sites whose certificate it names are revoked here too. */
  async acceptRevocations(list: unknown): Promise<string[]> {
    const trust = this.requireTrust();
    const probe = new FederationTrust(trust.adminPublicKey, trust.revocations);
    try {
      if (!probe.acceptRevocations(list)) throw new FederationError(`revocation list ${probe.revocationSequence} is the one already held`);
    } catch (err) {
      if (err instanceof TrustError) throw new FederationError(`revocation list refused: ${err.message}`, 400);
      throw err;
    }
    const signed = list as RevocationList;
    const revokedSites = this.store.data.sites.filter((s) => s.certificate && probe.isRevoked(s.certificate.body.serial) && !s.revokedAt);
    if (this.certificate && probe.isRevoked(this.certificate.body.serial)) throw new FederationError('this list revokes the coordinator\'s own certificate: certify a new coordinator key first (fedmed federation rotate-coordinator-key)', 400);
    const now = new Date().toISOString();
    await this.store.update((d) => {
      d.federation!.revocations = signed;
      for (const s of revokedSites) s.revokedAt = now;
    });
    const names = revokedSites.map((s) => s.name);
    this.onRevocations(signed, names);
    return names;
  }

  /** Stores the admin's certificate of a site's keys after checking it names the keys the site enrolled with. */
  async certifySite(site: SiteRecord, certificate: unknown): Promise<SiteCertificate> {
    const trust = this.requireTrust();
    let c;
    try {
      c = trust.site(certificate, { site: site.name });
    } catch (err) {
      if (err instanceof TrustError) throw new FederationError(`site certificate refused: ${err.message}`, 400);
      throw err;
    }
    if (!site.publicKey || !site.encryptionKey) throw new FederationError(`site "${site.name}" has not enrolled yet`);
    if (c.identityKey !== site.publicKey || c.encryptionKey !== site.encryptionKey) throw new FederationError(`the certificate names keys other than the ones site "${site.name}" enrolled with; compare the fingerprints again`, 400);
    await this.store.update(() => void (site.certificate = certificate as SiteCertificate));
    return certificate as SiteCertificate;
  }

  /** Why a site may not be sampled (no certificate, expired, revoked), or null when it may. */
  uncertified(site: SiteRecord): string | null {
    const trust = this.trust;
    if (!trust) return 'the coordinator is not certified by the federation admin';
    if (!site.certificate) return 'no site certificate (fedmed site certify)';
    try {
      const c = trust.site(site.certificate, { site: site.name });
      if (c.identityKey !== site.publicKey) return 'its certificate names another identity key';
      return null;
    } catch (err) {
      return (err as Error).message;
    }
  }

  private requireTrust(): FederationTrust {
    const t = this.trust;
    if (!t) throw new FederationError('this coordinator is not certified by a federation admin yet (fedmed federation certify-coordinator)');
    return t;
  }
}
