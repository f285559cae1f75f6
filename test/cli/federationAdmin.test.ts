/**
 * The admin tools do not take the coordinator's word either: a coordinator that presents an
 * older revocation list (or none) gets the admin's own newest list installed again, revoking a
 * site revokes every certificate the admin ever issued for it, and the CKKS grant tool never
 * wraps a key to a site the admin revoked, whatever the coordinator says about it.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { FederationView } from '../../coordinator/federation/coordinatorFederation.js';
import type { AdminSiteView, AdminTarget } from '../../cli/admin/adminTarget.js';
import { adminTrust, revokeSite } from '../../cli/admin/federationAdmin.js';
import { generateIdentity } from '../../shared/secure/identity.js';
import { generateEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import { createAdminKeyFile, loadAdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueCoordinatorCertificate, issueRevocationList, issueSiteCertificate } from '../../shared/secure/trust/adminSigning.js';
import type { RevocationList, SiteCertificate } from '../../shared/secure/trust/certificates.js';
import { makeTempDir } from '../helpers/paths.js';

/** A coordinator that forgets revocations: it always presents `revocations` (default none) and records what it is sent. */
class ForgetfulCoordinator implements AdminTarget {
  readonly url = 'http://127.0.0.1:1';
  installed: RevocationList[] = [];
  revocations: RevocationList | null = null;
  constructor(
    private readonly adminPublicKey: string,
    private readonly siteView: AdminSiteView,
  ) {}
  async federation(): Promise<FederationView> {
    const key = generateIdentity().publicKeyB64;
    return { adminPublicKey: this.adminPublicKey, adminFingerprint: null, coordinatorPublicKey: key, nextCoordinatorPublicKey: null, coordinatorCertificate: null, revocations: this.revocations };
  }
  async installCoordinatorCertificate(): Promise<{ rotated: boolean }> {
    return { rotated: false };
  }
  async rotateCoordinatorKey(): Promise<FederationView> {
    return this.federation();
  }
  async sites(): Promise<AdminSiteView[]> {
    return [this.siteView];
  }
  async site(): Promise<AdminSiteView | null> {
    return this.siteView;
  }
  async addSite(): Promise<{ name: string; token: string }> {
    throw new Error('not used');
  }
  async certifySite(): Promise<void> {}
  async installRevocations(list: RevocationList): Promise<string[]> {
    this.installed.push(list);
    return [];
  }
  async revokeSite(): Promise<void> {}
}

describe('cli/admin: the admin keeps its own ledger of certificates and revocations', () => {
  const t = makeTempDir();
  after(() => t.cleanup());

  it('revoking a site revokes every certificate ever issued for it; a coordinator hiding the list gets the admin\'s again', async () => {
    const file = join(t.dir, 'admin.pem');
    const admin = createAdminKeyFile(file);
    const keys = { identityKey: generateIdentity().publicKeyB64, encryptionKey: generateEncryptionKey().publicB64 };
    const first = issueSiteCertificate(admin, { site: 'mallory', ...keys });
    const renewed = issueSiteCertificate(admin, { site: 'mallory', ...keys });
    admin.ledger.recordCertificate(first);
    admin.ledger.recordCertificate(renewed);
    admin.ledger.recordCertificate(issueCoordinatorCertificate(admin, { publicKey: generateIdentity().publicKeyB64, urls: ['https://fl.example.org'] }));
    const coordinator = new ForgetfulCoordinator(admin.publicKeyB64, { name: 'mallory', enrolled: true, revoked: false, publicKey: keys.identityKey, encryptionKey: keys.encryptionKey, certificate: renewed as SiteCertificate });
    await revokeSite(coordinator, admin, 'mallory', 'stolen laptop');
    const list = coordinator.installed.at(-1)!;
    assert.deepEqual(list.body.revoked.map((r) => r.serial).sort(), [first.body.serial, renewed.body.serial].sort(), 'both certificates, not only the one the coordinator shows');
    // The ledger is on the admin's disk: a later session (a new process) still knows the list ...
    const later = loadAdminKey(file);
    assert.equal(later.ledger.revocations?.body.sequence, 1);
    // ... and a coordinator that presents none (or an older one) gets it installed again, and trust keeps it.
    coordinator.installed = [];
    const trust = await adminTrust(coordinator, later);
    assert.equal(coordinator.installed.length, 1);
    assert.equal(coordinator.installed[0].body.sequence, 1);
    assert.throws(() => trust.site(renewed), /revoked/);
    coordinator.revocations = issueRevocationList(later, null, []); // older content, same key: sequence 1 but different
    await assert.rejects(adminTrust(coordinator, later), /two different revocation lists carry sequence 1/);
  });
});
