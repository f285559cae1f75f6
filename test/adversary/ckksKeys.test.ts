/**
 * CKKS key substitution against a real edge process: a coordinator that mints a key set of
 * its own could decrypt every update encrypted under it. The edge accepts a key set only with
 * the federation admin's signature on it and on the exact wrapped copy granted to this site's
 * encryption key; otherwise it refuses and sends no ciphertext at all.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { encryptedVersionId } from '../../shared/model/modelHash.js';
import { float32Bytes } from '../../shared/model/modelHash.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { CkksSecretKey } from '../../shared/secure/ckks/ckksSecretKey.js';
import { FEDMED_CKKS_PARAMETERS } from '../../shared/secure/ckks/ckksParams.js';
import { wrapSecretKey } from '../../shared/secure/ckks/keyWrap.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueKeyGrant, issueKeySetCertificate } from '../../shared/secure/trust/adminSigning.js';
import type { CkksKeyGrant, CkksKeySetCertificate } from '../../shared/secure/trust/certificates.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from './harness.js';

describe('adversary: a coordinator-made CKKS key set (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  /** What the fake answers to the edge's key request, per key set. */
  const keys = new Map<string, { certificate: CkksKeySetCertificate; grant: CkksKeyGrant; wrapped: Uint8Array }>();
  /** Per experiment: encrypted links the fake serves after the initial model, or 'hold' to never answer. */
  const chains = new Map<string, { version: string; bytes: Uint8Array }[] | 'hold'>();

  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp');
    await waitEvent(edge, 'connected');
    fake.onMessage = (m) => {
      if (m.type === 'ckks_fetch') {
        const links = chains.get(m.experiment) ?? [];
        if (links === 'hold') return;
        // The initial model in the clear (round 0 of a CKKS experiment), then the scripted links.
        const payload = Buffer.concat([float32Bytes(PARAMS), ...links.map((l) => l.bytes)]);
        void fake.send({ type: 'ckks_chain', experiment: m.experiment, want: m.want, base: null, initialBytes: layoutOf(SPEC).size * 4, links: links.map((l, i) => ({ version: l.version, parent: i === 0 ? VERSION : links[i - 1].version, bytes: l.bytes.byteLength })) }, payload);
      } else if (m.type === 'ckks_key_req') {
        const k = keys.get(m.keySet)!;
        void fake.send({ type: 'ckks_key', keySet: m.keySet, parameters: FEDMED_CKKS_PARAMETERS, certificate: k.certificate, grant: k.grant }, k.wrapped);
      }
    };
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  /** A CKKS round under `keySet`; resolves with the edge's fit_res payload, or its fit_failed reason. */
  async function round(experiment: string, keySet: string, o: { round?: number; version?: string } = {}): Promise<{ failed?: string; payload?: Buffer }> {
    const n = o.round ?? 1;
    // CKKS rounds carry no model: the edge brings its own copy up to date.
    await fake.sendTo('hosp', fitIns(experiment, n, { modelVersion: o.version ?? VERSION, ckks: { mode: 'ckks', keySet, range: 1, maxWeight: 100 } }).message);
    const r = await waitFor(`the edge's answer for ${experiment}`, () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === experiment && x.m.round === n), 120_000, 50);
    await settled(edge, experiment);
    return r.m.type === 'fit_failed' ? { failed: r.m.reason } : { payload: r.payload };
  }

  async function mint(): Promise<{ keySet: string; secret: Uint8Array; wrapped: Uint8Array }> {
    const keySet = randomBytes(16).toString('hex');
    const { key, bytes } = await CkksSecretKey.generate();
    key.dispose();
    return { keySet, secret: bytes, wrapped: wrapSecretKey(bytes, edge.site.encryption.publicB64, keySet, 'hosp') };
  }

  it('a key set the coordinator made and signed itself is refused; no ciphertext is sent', async () => {
    const { keySet, wrapped } = await mint();
    const impostor = ephemeralAdminKey();
    keys.set(keySet, { certificate: issueKeySetCertificate(impostor, keySet, FEDMED_CKKS_PARAMETERS), grant: issueKeyGrant(impostor, { keySet, site: 'hosp', encryptionKey: edge.site.encryption.publicB64, wrapped }), wrapped });
    const r = await round('exp-minted', keySet);
    assert.match(r.failed ?? '', /CKKS key set .* refused: .*another federation/);
    assert.equal(r.payload, undefined);
  });

  it('an admin-signed key set, but a wrapped key the admin did not grant (swapped by the coordinator): refused', async () => {
    const { keySet, wrapped } = await mint();
    const theirs = await mint(); // the coordinator's own secret, wrapped to the site under the admin's key-set id
    const swapped = wrapSecretKey(theirs.secret, edge.site.encryption.publicB64, keySet, 'hosp');
    keys.set(keySet, { certificate: issueKeySetCertificate(fake.admin, keySet, FEDMED_CKKS_PARAMETERS), grant: issueKeyGrant(fake.admin, { keySet, site: 'hosp', encryptionKey: edge.site.encryption.publicB64, wrapped }), wrapped: swapped });
    const r = await round('exp-swapped', keySet);
    assert.match(r.failed ?? '', /are not the ones the admin granted/);
    assert.equal(r.payload, undefined);
  });

  it('a grant for another site\'s key is refused; the admin\'s own key set and grant are accepted and the update encrypted under it', async () => {
    const { keySet, wrapped } = await mint();
    const otherSite = fake.certifiedPeer('elsewhere');
    keys.set(keySet, { certificate: issueKeySetCertificate(fake.admin, keySet, FEDMED_CKKS_PARAMETERS), grant: issueKeyGrant(fake.admin, { keySet, site: 'hosp', encryptionKey: otherSite.encryption.publicB64, wrapped }), wrapped });
    const bad = await round('exp-other-grant', keySet);
    assert.match(bad.failed ?? '', /granted to encryption key .*, not this site's/);
    // The honest grant (the harness itself is sound): an update that decrypts with the admin's key.
    const good = await mint();
    keys.set(good.keySet, { certificate: issueKeySetCertificate(fake.admin, good.keySet, FEDMED_CKKS_PARAMETERS), grant: issueKeyGrant(fake.admin, { keySet: good.keySet, site: 'hosp', encryptionKey: edge.site.encryption.publicB64, wrapped: good.wrapped }), wrapped: good.wrapped });
    const ok = await round('exp-honest', good.keySet);
    assert.equal(ok.failed, undefined);
    const key = await CkksSecretKey.load(good.secret);
    try {
      const values = key.decrypt(ok.payload!, layoutOf(SPEC).size + 1, 'the edge update');
      assert.ok(Math.abs(values[layoutOf(SPEC).size] - 42) < 1e-6, `weight ${values[layoutOf(SPEC).size]}`);
    } finally {
      key.dispose();
    }
  });

  it('an "aggregate" that is not a sum of updates (a probe) leaks no decrypted value, and the site stops decrypting for that experiment', async () => {
    const good = await mint();
    keys.set(good.keySet, { certificate: issueKeySetCertificate(fake.admin, good.keySet, FEDMED_CKKS_PARAMETERS), grant: issueKeyGrant(fake.admin, { keySet: good.keySet, site: 'hosp', encryptionKey: edge.site.encryption.publicB64, wrapped: good.wrapped }), wrapped: good.wrapped });
    // The coordinator cannot encrypt, but a probe is anything it can make decrypt to a chosen slot:
    // here a vector whose "weight" slot holds -999.93 (as a shifted copy of a site's update would).
    const key = await CkksSecretKey.load(good.secret);
    const size = layoutOf(SPEC).size;
    const probe = key.encrypt(Float64Array.from({ length: size + 1 }, (_, i) => (i === size ? -999.93 : 0)));
    key.dispose();
    const version = encryptedVersionId(SPEC, VERSION, createHash('sha256').update(probe).digest('hex'));
    chains.set('exp-probe', [{ version, bytes: probe }]);
    const r = await round('exp-probe', good.keySet, { version });
    assert.match(r.failed ?? '', /weight is not a positive count/);
    assert.doesNotMatch(r.failed!, /999|\d+\.\d+/, 'no decrypted number in what reaches the coordinator');
    // A second query on the same experiment is refused before anything is decrypted.
    const again = await round('exp-probe', good.keySet, { round: 2, version });
    assert.match(again.failed ?? '', /no longer decrypts for experiment exp-probe/);
    assert.equal(fake.of('ckks_fetch', 'hosp').filter((m) => m.experiment === 'exp-probe').length, 1, 'no second chain was even asked for');
  });

  it('a plaintext fit_ins slipped in while a CKKS round of the same experiment waits on the coordinator is refused', async () => {
    const good = await mint();
    keys.set(good.keySet, { certificate: issueKeySetCertificate(fake.admin, good.keySet, FEDMED_CKKS_PARAMETERS), grant: issueKeyGrant(fake.admin, { keySet: good.keySet, site: 'hosp', encryptionKey: edge.site.encryption.publicB64, wrapped: good.wrapped }), wrapped: good.wrapped });
    chains.set('exp-race', 'hold');
    await fake.sendTo('hosp', fitIns('exp-race', 1, { ckks: { mode: 'ckks', keySet: good.keySet, range: 1, maxWeight: 100 } }).message);
    await waitFor('the edge to ask for the chain', () => fake.of('ckks_fetch', 'hosp').some((m) => m.experiment === 'exp-race'), 30_000, 20);
    const plain = fitIns('exp-race', 2);
    await fake.sendTo('hosp', plain.message, plain.payload);
    const failed = await waitFor('the refusal', () => fake.of('fit_failed', 'hosp').find((m) => m.experiment === 'exp-race' && m.round === 2), 30_000, 20);
    assert.match(failed.reason, /ran under ckks since round 1; this round asks for plain/);
    assert.equal(fake.of('fit_res', 'hosp').filter((m) => m.experiment === 'exp-race').length, 0);
  });
});
