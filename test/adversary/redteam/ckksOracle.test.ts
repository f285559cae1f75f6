/**
 * Red team: CKKS's promise is that the coordinator never sees one site's update. But every site
 * holds the (shared) CKKS secret key and decrypts whatever "aggregate" link the coordinator
 * serves in a ckks_chain, as long as its weight slot is a positive count — which one site's own
 * encrypted update [w·δ, w] is. The coordinator serves a victim site's ciphertext as the
 * "aggregate" of an experiment this site never trained for, then sends eval_ins: the site
 * decrypts global + δ_victim and releases that model's exact evaluation metrics. Here the
 * victim's update (only the last layer's bias, ±1) decides which class the model predicts, so
 * the released accuracy tells its sign.
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { encryptedVersionId, float32Bytes } from '../../../shared/model/modelHash.js';
import { layoutOf } from '../../../shared/model/parameterLayout.js';
import { CkksSecretKey } from '../../../shared/secure/ckks/ckksSecretKey.js';
import { FEDMED_CKKS_PARAMETERS } from '../../../shared/secure/ckks/ckksParams.js';
import { encodeCkksUpdate } from '../../../shared/secure/ckks/ckksUpdate.js';
import { wrapSecretKey } from '../../../shared/secure/ckks/keyWrap.js';
import { issueKeyGrant, issueKeySetCertificate } from '../../../shared/secure/trust/adminSigning.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { PARAMS, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

describe('red team: a site as a CKKS decryption oracle for another site\'s update (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let keySet = '';
  let secret: Uint8Array;
  const links = new Map<string, { version: string; bytes: Uint8Array }>();
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { n: 200 });
    await waitEvent(edge, 'connected');
    keySet = randomBytes(16).toString('hex');
    const { key, bytes } = await CkksSecretKey.generate();
    key.dispose();
    secret = bytes;
    const wrapped = wrapSecretKey(bytes, edge.site.encryption.publicB64, keySet, 'hosp');
    const certificate = issueKeySetCertificate(fake.admin, keySet, FEDMED_CKKS_PARAMETERS);
    const grant = issueKeyGrant(fake.admin, { keySet, site: 'hosp', encryptionKey: edge.site.encryption.publicB64, wrapped });
    fake.onMessage = (m) => {
      if (m.type === 'ckks_fetch') {
        const l = links.get(m.experiment)!;
        void fake.send({ type: 'ckks_chain', experiment: m.experiment, want: m.want, base: null, initialBytes: layoutOf(SPEC).size * 4, links: [{ version: l.version, parent: VERSION, bytes: l.bytes.byteLength }] }, Buffer.concat([float32Bytes(PARAMS), l.bytes]));
      } else if (m.type === 'ckks_key_req') void fake.send({ type: 'ckks_key', keySet: m.keySet, parameters: FEDMED_CKKS_PARAMETERS, certificate, grant }, wrapped);
    };
  });
  after(async () => {
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  /** What a victim site sends in a CKKS round: its update encrypted under the federation's key set (weight 1). */
  async function victimCiphertext(favoured: 0 | 1): Promise<Uint8Array> {
    const layout = layoutOf(SPEC);
    const delta = new Float32Array(layout.size);
    const bias = layout.entries[layout.entries.length - 1]; // the last dense layer's bias: one value per class
    delta[bias.offset + favoured] = 1;
    delta[bias.offset + (1 - favoured)] = -1;
    const key = await CkksSecretKey.load(secret);
    try {
      return key.encrypt(encodeCkksUpdate(delta, 1, { range: 1, maxWeight: 1 }).values);
    } finally {
      key.dispose();
    }
  }

  async function evaluateAs(experiment: string, favoured: 0 | 1): Promise<number | null> {
    const bytes = await victimCiphertext(favoured);
    const version = encryptedVersionId(SPEC, VERSION, createHash('sha256').update(bytes).digest('hex'));
    links.set(experiment, { version, bytes });
    await fake.sendTo('hosp', { type: 'eval_ins', experiment, round: 1, modelVersion: version, spec: SPEC, ckksKeySet: keySet });
    const a = await waitFor(`the answer for ${experiment}`, () => fake.receivedFrom.find((x) => (x.m.type === 'eval_res' || x.m.type === 'eval_failed') && x.m.experiment === experiment)?.m, 60_000, 20);
    return a.type === 'eval_res' ? a.metrics.accuracy! : null;
  }

  it('the released evaluations do not depend on a single victim update', async () => {
    const a0 = await evaluateAs('oracle-0', 0);
    const a1 = await evaluateAs('oracle-1', 1);
    if (a0 === null || a1 === null) return; // refused: defended
    assert.equal(a0, a1, `HOLE: the site decrypted one victim's encrypted update and released its model's exact accuracy: ${a0} when the victim favoured class 0, ${a1} when it favoured class 1`);
  });
});
