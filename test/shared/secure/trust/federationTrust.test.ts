import assert from 'node:assert/strict';
import { generateIdentity } from '../../../../shared/secure/identity.js';
import { generateEncryptionKey } from '../../../../shared/secure/ckks/siteEncryptionKey.js';
import { FEDMED_CKKS_PARAMETERS } from '../../../../shared/secure/ckks/ckksParams.js';
import { ephemeralAdminKey } from '../../../../shared/secure/trust/adminKey.js';
import { issueCoordinatorCertificate, issueKeyGrant, issueKeySetCertificate, issueRevocationList, issueSiteCertificate } from '../../../../shared/secure/trust/adminSigning.js';
import { signDocument, SITE_CERTIFICATE, type SiteCertificate } from '../../../../shared/secure/trust/certificates.js';
import { FederationTrust } from '../../../../shared/secure/trust/federationTrust.js';
import { keyFingerprint } from '../../../../shared/secure/trust/fingerprint.js';
import { formatJoinToken, parseJoinToken } from '../../../../shared/secure/trust/joinToken.js';
import { TrustError } from '../../../../shared/secure/trust/trustError.js';
import { EdgeTrust } from '../../../../edge-client/federation/edgeTrust.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const reason = (r: TrustError['reason']) => (e: unknown) => e instanceof TrustError && e.reason === r;

describe('shared/secure/trust: certificates against the pinned admin key', () => {
  const admin = ephemeralAdminKey();
  const other = ephemeralAdminKey();
  const trust = () => new FederationTrust(admin.publicKeyB64);
  const siteKeys = { identityKey: generateIdentity().publicKeyB64, encryptionKey: generateEncryptionKey().publicB64 };

  it('accepts what the admin signed; refuses another federation, a forged signature and an altered body', () => {
    const cert = issueSiteCertificate(admin, { site: 'hosp-a', ...siteKeys });
    assert.equal(trust().site(cert, { site: 'hosp-a' }).identityKey, siteKeys.identityKey);
    assert.throws(() => trust().site(issueSiteCertificate(other, { site: 'hosp-a', ...siteKeys })), reason('forged'));
    // The right federation name but another key's signature.
    const forged = signDocument(other.privateKey, { ...cert.body });
    assert.throws(() => trust().site(forged), (e: unknown) => reason('forged')(e) && /not signed by the federation admin key/.test((e as Error).message));
    const altered: SiteCertificate = { ...cert, body: { ...cert.body, identityKey: generateIdentity().publicKeyB64 } };
    assert.throws(() => trust().site(altered), reason('forged'));
    assert.throws(() => trust().site(cert, { site: 'hosp-b' }), reason('wrong_subject'));
    assert.throws(() => trust().site({ body: { kind: SITE_CERTIFICATE }, signature: 'x' }), reason('malformed'));
    assert.throws(() => trust().site('nonsense'), reason('malformed'));
  });

  it('validity: expired and not-yet-valid certificates are refused', () => {
    const cert = issueSiteCertificate(admin, { site: 'hosp-a', ...siteKeys, days: 1 });
    assert.throws(() => trust().site(cert, { at: Date.now() + 2 * 86_400_000 }), reason('expired'));
    assert.throws(() => trust().site(cert, { at: Date.now() - 86_400_000 }), reason('not_yet_valid'));
  });

  it('the coordinator certificate names the URLs it serves (ws and http name the same origin)', () => {
    const key = generateIdentity().publicKeyB64;
    const cert = issueCoordinatorCertificate(admin, { publicKey: key, urls: ['https://fl.example.org:8700/some/path'] });
    assert.equal(trust().coordinator(cert, { url: 'wss://fl.example.org:8700/v1/edge' }).publicKey, key);
    assert.throws(() => trust().coordinator(cert, { url: 'https://evil.example.org:8700' }), reason('wrong_subject'));
    assert.throws(() => trust().coordinator(cert, { url: 'http://fl.example.org:8700' }), reason('wrong_subject'));
  });

  it('revocation lists: only newer lists are taken, a replayed older one is refused, revoked serials are refused', () => {
    const t = trust();
    const cert = issueSiteCertificate(admin, { site: 'hosp-a', ...siteKeys });
    const l1 = issueRevocationList(admin, null, []);
    const l2 = issueRevocationList(admin, l1, [{ serial: cert.body.serial, subject: 'site hosp-a' }]);
    assert.equal(t.acceptRevocations(l2), true);
    assert.throws(() => t.site(cert), reason('revoked'));
    assert.throws(() => t.acceptRevocations(l1), reason('stale'));
    assert.equal(t.acceptRevocations(l2), false);
    // A different list with the same sequence (made by someone who could sign) is a contradiction.
    assert.throws(() => t.acceptRevocations(issueRevocationList(admin, l1, [])), reason('forged'));
    assert.throws(() => t.acceptRevocations(issueRevocationList(other, null, [])), reason('forged'));
    assert.equal(t.revocationSequence, 2);
  });

  it('an edge keeps the newest list across restarts (a coordinator cannot un-revoke by replaying an older one later)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fedmed-trust-'));
    try {
      const l1 = issueRevocationList(admin, null, []);
      const l2 = issueRevocationList(admin, l1, [{ serial: 'c'.repeat(32), subject: 'site x' }]);
      assert.equal(new EdgeTrust(dir, admin.publicKeyB64).acceptRevocations(l2), true);
      const restarted = new EdgeTrust(dir, admin.publicKeyB64);
      assert.equal(restarted.revocationSequence, 2);
      assert.equal(restarted.isRevoked('c'.repeat(32)), true);
      assert.throws(() => restarted.acceptRevocations(l1), reason('stale'));
      // A list written on disk by someone without the admin key is refused at start.
      assert.throws(() => new EdgeTrust(dir, other.publicKeyB64), reason('forged'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('CKKS: a key set and a grant bind the parameters, the site, its encryption key and the exact wrapped bytes', () => {
    const set = issueKeySetCertificate(admin, 'a'.repeat(32), FEDMED_CKKS_PARAMETERS);
    assert.equal(trust().keySet(set, 'a'.repeat(32)).keySet, 'a'.repeat(32));
    assert.throws(() => trust().keySet(set, 'b'.repeat(32)), reason('wrong_subject'));
    assert.throws(() => trust().keySet(issueKeySetCertificate(other, 'a'.repeat(32), FEDMED_CKKS_PARAMETERS), 'a'.repeat(32)), reason('forged'));
    const wrapped = new Uint8Array(100).fill(7);
    const grant = issueKeyGrant(admin, { keySet: 'a'.repeat(32), site: 'hosp-a', encryptionKey: siteKeys.encryptionKey, wrapped });
    const o = { keySet: 'a'.repeat(32), site: 'hosp-a', encryptionKey: siteKeys.encryptionKey, wrapped };
    assert.equal(trust().keyGrant(grant, o).site, 'hosp-a');
    assert.throws(() => trust().keyGrant(grant, { ...o, wrapped: new Uint8Array(100).fill(8) }), reason('forged'));
    assert.throws(() => trust().keyGrant(grant, { ...o, encryptionKey: generateEncryptionKey().publicB64 }), reason('wrong_subject'));
    assert.throws(() => trust().keyGrant(grant, { ...o, site: 'hosp-b' }), reason('wrong_subject'));
  });

  it('join tokens carry the admin key fingerprint; a token without one is refused', () => {
    const token = formatJoinToken(`fmj_${'x'.repeat(43)}`, keyFingerprint(admin.publicKeyB64));
    assert.deepEqual(parseJoinToken(token), { secret: `fmj_${'x'.repeat(43)}`, adminFingerprint: admin.fingerprint });
    assert.throws(() => parseJoinToken(`fmj_${'x'.repeat(43)}`), /carries no federation admin fingerprint/);
    assert.throws(() => parseJoinToken('hello'), /not a join token/);
  });
});
