/**
 * The coordinator (a real process) takes nothing the federation admin did not sign, even from
 * a caller holding the admin API token: a coordinator certificate for another key or from
 * another admin, a forged or replayed revocation list, a site certificate for keys the site did
 * not enrol with, a CKKS key set without the admin's signature. Each is a 4xx naming why, and
 * nothing it holds changes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { generateIdentity } from '../../shared/secure/identity.js';
import { generateEncryptionKey } from '../../shared/secure/ckks/siteEncryptionKey.js';
import { FEDMED_CKKS_PARAMETERS } from '../../shared/secure/ckks/ckksParams.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueCoordinatorCertificate, issueKeySetCertificate, issueRevocationList, issueSiteCertificate } from '../../shared/secure/trust/adminSigning.js';
import { adminApi, call, enrol, freePort, startCoordinator, stopProc, type CoordinatorProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { revokeSerials } from '../../cli/admin/federationAdmin.js';

describe('adversary: uploads to the coordinator that the admin did not sign (real coordinator process)', function () {
  this.timeout(60_000);
  const t = makeTempDir();
  let c: CoordinatorProc;
  before(async () => {
    c = await startCoordinator(join(t.dir, 'coord'), await freePort());
    await enrol(c, 'hosp', join(t.dir, 'hosp'), { certify: false });
  });
  after(async () => {
    if (c) await stopProc(c);
    t.cleanup();
  });

  it('refuses certificates and lists from another admin or for other keys; keeps what it held', async () => {
    const before = (await call<{ coordinatorCertificate: { signature: string } }>(c, 'GET', '/v1/federation')).body;
    const other = ephemeralAdminKey();
    const view = (await call<{ coordinatorPublicKey: string }>(c, 'GET', '/v1/federation')).body;
    let r = await call<{ message: string }>(c, 'PUT', '/v1/federation/coordinator-certificate', { certificate: issueCoordinatorCertificate(other, { publicKey: view.coordinatorPublicKey, urls: [c.url] }), adminPublicKey: other.publicKeyB64 });
    assert.equal(r.status, 409);
    assert.match(r.body.message, /already belongs to the federation of admin key/);
    r = await call(c, 'PUT', '/v1/federation/coordinator-certificate', { certificate: issueCoordinatorCertificate(c.admin, { publicKey: generateIdentity().publicKeyB64, urls: [c.url] }) });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /neither this coordinator's key .* nor its next key/);
    r = await call(c, 'PUT', '/v1/federation/revocations', { list: issueRevocationList(other, null, []) });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /revocation list refused: .*another federation/);
    // An admin-signed list is taken; replaying it (or an older one) is refused.
    await revokeSerials(adminApi(c), c.admin, [{ serial: 'f'.repeat(32), subject: 'nobody' }]);
    const held = (await call<{ revocations: { body: { sequence: number } } }>(c, 'GET', '/v1/federation')).body.revocations;
    r = await call(c, 'PUT', '/v1/federation/revocations', { list: held });
    assert.equal(r.status, 409);
    assert.match(r.body.message, /the one already held/);
    const site = (await call<{ publicKey: string; encryptionKey: string }>(c, 'GET', '/v1/sites/hosp')).body;
    r = await call(c, 'PUT', '/v1/sites/hosp/certificate', { certificate: issueSiteCertificate(c.admin, { site: 'hosp', identityKey: generateIdentity().publicKeyB64, encryptionKey: site.encryptionKey }) });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /names keys other than the ones site "hosp" enrolled with/);
    r = await call(c, 'PUT', '/v1/sites/hosp/certificate', { certificate: issueSiteCertificate(other, { site: 'hosp', identityKey: site.publicKey, encryptionKey: site.encryptionKey }) });
    assert.equal(r.status, 400);
    r = await call(c, 'PUT', '/v1/sites/hosp/certificate', { certificate: issueSiteCertificate(c.admin, { site: 'elsewhere', identityKey: site.publicKey, encryptionKey: generateEncryptionKey().publicB64 }) });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /is for site elsewhere/);
    const keySet = 'a'.repeat(32);
    r = await call(c, 'POST', '/v1/ckks/keysets', { id: keySet, parameters: FEDMED_CKKS_PARAMETERS, certificate: issueKeySetCertificate(other, keySet, FEDMED_CKKS_PARAMETERS) });
    assert.equal(r.status, 400);
    assert.match(r.body.message, /another federation/);
    // Nothing changed: the same coordinator certificate, the site still uncertified, no key set.
    const afterView = (await call<{ coordinatorCertificate: { signature: string } }>(c, 'GET', '/v1/federation')).body;
    assert.equal(afterView.coordinatorCertificate.signature, before.coordinatorCertificate.signature);
    assert.equal((await call<{ certified: boolean }>(c, 'GET', '/v1/sites/hosp')).body.certified, false);
    assert.deepEqual((await call<unknown[]>(c, 'GET', '/v1/ckks/keysets')).body, []);
    // Without the admin API token nothing is even looked at.
    const anon = await fetch(new URL('/v1/federation/revocations', c.url), { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ list: held }) });
    assert.equal(anon.status, 401);
  });
});
