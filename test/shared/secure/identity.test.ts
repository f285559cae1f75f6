import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { generateIdentity, loadIdentity, publicKeyFromB64, saveIdentity, signMessage, verifyMessage } from '../../../shared/secure/identity.js';
import { makeTempDir } from '../../helpers/paths.js';

describe('shared/secure/identity (Ed25519, node:crypto)', () => {
  it('signatures verify only for the same key, domain and message', () => {
    const a = generateIdentity();
    const b = generateIdentity();
    const sig = signMessage(a.privateKey, 'dom', 'site-a', 'nonce1');
    assert.equal(verifyMessage(publicKeyFromB64(a.publicKeyB64), sig, 'dom', 'site-a', 'nonce1'), true);
    assert.equal(verifyMessage(b.publicKey, sig, 'dom', 'site-a', 'nonce1'), false);
    assert.equal(verifyMessage(a.publicKey, sig, 'other-domain', 'site-a', 'nonce1'), false);
    assert.equal(verifyMessage(a.publicKey, sig, 'dom', 'site-a', 'nonce2'), false);
    assert.equal(verifyMessage(a.publicKey, 'garbage', 'dom', 'site-a', 'nonce1'), false);
  });

  it('saves the private key with mode 0600 and loads it back', () => {
    const t = makeTempDir();
    try {
      const id = generateIdentity();
      const file = join(t.dir, 'k.pem');
      saveIdentity(file, id);
      assert.equal(statSync(file).mode & 0o777, 0o600);
      assert.equal(loadIdentity(file).publicKeyB64, id.publicKeyB64);
    } finally {
      t.cleanup();
    }
  });

  it('rejects malformed public keys', () => {
    assert.throws(() => publicKeyFromB64('short'), /43 characters/);
  });
});
