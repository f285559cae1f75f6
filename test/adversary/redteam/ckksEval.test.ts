/**
 * Red team: a CKKS experiment's evaluation. EdgeClient.evaluate checks "one evaluation per DP
 * round" (siteRules.evaluation) synchronously, but records it (security.recordEvaluation) only
 * after `await this.encryptedModel(...)` — so two eval_ins for the same round sent back to back
 * both pass the check before either records. Only the CKKS path awaits; the plaintext one is
 * synchronous (and covered here as the sanity case).
 *
 * A passing test = the attack failed (defended); a failing test = a reproduced hole.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { float32Bytes } from '../../../shared/model/modelHash.js';
import { layoutOf } from '../../../shared/model/parameterLayout.js';
import { CkksSecretKey } from '../../../shared/secure/ckks/ckksSecretKey.js';
import { FEDMED_CKKS_PARAMETERS } from '../../../shared/secure/ckks/ckksParams.js';
import { wrapSecretKey } from '../../../shared/secure/ckks/keyWrap.js';
import { issueKeyGrant, issueKeySetCertificate } from '../../../shared/secure/trust/adminSigning.js';
import { policyFromFlags, writeSitePolicy } from '../../../edge-client/policy/sitePolicy.js';
import { FakeCoordinator } from '../../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../../helpers/federation.js';
import { makeTempDir } from '../../helpers/paths.js';
import { fitIns, PARAMS, settled, SPEC, startEdge, VERSION, waitEvent, type EdgeUnderTest } from '../harness.js';

const DP = { mode: 'local' as const, clip: 1, noiseMultiplier: 2, noiseStddev: 0, samplingRate: 0.1, delta: 1e-5 };

describe('red team: two evaluations of one DP round, back to back (real edge process)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let edge: EdgeUnderTest;
  let keySet = '';
  const policy = policyFromFlags({ privacyBudget: 100 });
  policy.release = { ...policy.release, dp: { exampleCount: 'withheld', metrics: 'noised' } };
  before(async () => {
    await fake.start();
    edge = await startEdge(fake, t.dir, 'hosp', { beforeStart: (dir) => writeSitePolicy(dir, policy) });
    await waitEvent(edge, 'connected');
    keySet = randomBytes(16).toString('hex');
    const { key, bytes } = await CkksSecretKey.generate();
    key.dispose();
    const wrapped = wrapSecretKey(bytes, edge.site.encryption.publicB64, keySet, 'hosp');
    const certificate = issueKeySetCertificate(fake.admin, keySet, FEDMED_CKKS_PARAMETERS);
    const grant = issueKeyGrant(fake.admin, { keySet, site: 'hosp', encryptionKey: edge.site.encryption.publicB64, wrapped });
    fake.onMessage = (m) => {
      if (m.type === 'ckks_fetch') void fake.send({ type: 'ckks_chain', experiment: m.experiment, want: m.want, base: null, initialBytes: layoutOf(SPEC).size * 4, links: [] }, float32Bytes(PARAMS));
      else if (m.type === 'ckks_key_req') void fake.send({ type: 'ckks_key', keySet: m.keySet, parameters: FEDMED_CKKS_PARAMETERS, certificate, grant }, wrapped);
    };
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(edge.output().slice(-6000));
    await stopProc(edge);
    await fake.close();
    t.cleanup();
  });

  const evals = (experiment: string) => fake.of('eval_res', 'hosp').filter((m) => m.experiment === experiment);

  it('sanity (plaintext): two eval_ins of a DP round back to back release one evaluation', async () => {
    const { message, payload } = fitIns('exp-plain', 1, { privacy: DP });
    await fake.sendTo('hosp', message, payload);
    await settled(edge, 'exp-plain');
    const ev = { type: 'eval_ins' as const, experiment: 'exp-plain', round: 1, modelVersion: VERSION, spec: SPEC };
    await Promise.all([fake.sendTo('hosp', ev, float32Bytes(PARAMS)), fake.sendTo('hosp', ev, float32Bytes(PARAMS))]);
    await waitFor('the answers', () => fake.receivedFrom.filter((x) => (x.m.type === 'eval_res' || x.m.type === 'eval_failed') && x.m.experiment === 'exp-plain').length >= 2, 30_000, 20);
    assert.equal(evals('exp-plain').length, 1);
  });

  it('CKKS: two eval_ins of a DP round back to back release one evaluation', async () => {
    await fake.sendTo('hosp', fitIns('exp-ckks', 1, { privacy: DP, ckks: { mode: 'ckks', keySet, range: 1, maxWeight: 1 } }).message);
    const fit = await waitFor('the fit answer', () => fake.receivedFrom.find((x) => (x.m.type === 'fit_res' || x.m.type === 'fit_failed') && x.m.experiment === 'exp-ckks')?.m, 120_000, 50);
    assert.equal(fit.type, 'fit_res', JSON.stringify(fit).slice(0, 400));
    const ev = { type: 'eval_ins' as const, experiment: 'exp-ckks', round: 1, modelVersion: VERSION, spec: SPEC, ckksKeySet: keySet };
    await Promise.all([fake.sendTo('hosp', ev), fake.sendTo('hosp', ev), fake.sendTo('hosp', ev)]);
    await waitFor('the answers', () => fake.receivedFrom.filter((x) => (x.m.type === 'eval_res' || x.m.type === 'eval_failed') && x.m.experiment === 'exp-ckks').length >= 3, 60_000, 20).catch(() => null);
    await new Promise((r) => setTimeout(r, 1000));
    assert.ok(evals('exp-ckks').length <= 1, `HOLE: ${evals('exp-ckks').length} evaluations of round 1 released (paid once): ${JSON.stringify(evals('exp-ckks').map((m) => m.metrics))}`);
  });
});
