/**
 * The consistency round against a coordinator that tells different sites different survivor
 * sets (real edge processes V and H; P an honest peer and C a colluding site, both certified,
 * played by the test). The lie it wants: "V survived" to V and P (so they reveal seed shares,
 * V's own included) and "V dropped" to H (so H reveals its share of V's mask key) — both of V's
 * secrets, hence V's update. With t = 3 of 4 and one colluder, H never sees 3 signatures on its
 * story and refuses; no share of V's mask key leaves any honest site.
 */
import assert from 'node:assert/strict';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { decodeSum } from '../../shared/secure/secagg/fixedPoint.js';
import { signSurvivors } from '../../shared/secure/secagg/consistencyRound.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { stopProc, waitFor } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { ScriptedSecureRound, settled, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';

describe('adversary: inconsistent survivor sets (SecAgg+ consistency round, real edge processes)', function () {
  this.timeout(180_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  const edges: EdgeUnderTest[] = [];

  before(async () => {
    await fake.start();
    edges.push(await startEdge(fake, t.dir, 'V', { seed: 1 }), await startEdge(fake, t.dir, 'H', { seed: 2 }));
    for (const e of edges) await waitEvent(e, 'connected');
  });
  after(async () => {
    for (const e of edges) await stopProc(e);
    await fake.close();
    t.cleanup();
  });

  it('an honest round over the same harness completes: the coordinator unmasks exactly the sum', async () => {
    const r = new ScriptedSecureRound(fake, 'exp-honest', 1, ['V', 'H'], [fake.certifiedPeer('P0'), fake.certifiedPeer('C0')]);
    await r.sharesAndMasks(await r.keys());
    const { totalWeight } = decodeSum(await r.unmask(), r.params);
    // Each edge weighs its update by its example count (42 training examples here); the peers masked zeros.
    assert.equal(totalWeight, 84);
    for (const e of edges) await settled(e, 'exp-honest');
  });

  it('"V survived" to V and P, "V dropped" to H: H refuses to unmask and no share of V\'s mask key leaves an honest site', async () => {
    const P = fake.certifiedPeer('P');
    const C = fake.certifiedPeer('C');
    const r = new ScriptedSecureRound(fake, 'exp-lie', 1, ['V', 'H'], [P, C]);
    await r.sharesAndMasks(await r.keys());
    const session = { experiment: r.experiment, round: 1, session: r.params.session };
    const S1 = ['C', 'H', 'P', 'V'];
    const S2 = ['C', 'H', 'P'];
    await fake.sendTo('V', { type: 'secagg_consistency', ...session, survivors: S1 });
    await fake.sendTo('H', { type: 'secagg_consistency', ...session, survivors: S2 });
    const pSig = r.peers.get('P')!.consistency({ type: 'secagg_consistency', ...session, survivors: S1 }).signature;
    // The colluder signs both stories.
    const cSig1 = signSurvivors(C.identity.privateKey, 'C', session, S1);
    const cSig2 = signSurvivors(C.identity.privateKey, 'C', session, S2);
    const vSig = (await r.from('V', 'secagg_consistency_sig')).signature;
    const hSig = (await r.from('H', 'secagg_consistency_sig')).signature;
    const toV: MessageOf<'secagg_unmask'> = { type: 'secagg_unmask', ...session, survivors: S1, dropped: [], signatures: [{ site: 'V', signature: vSig }, { site: 'P', signature: pSig }, { site: 'C', signature: cSig1 }] };
    const toH: MessageOf<'secagg_unmask'> = { type: 'secagg_unmask', ...session, survivors: S2, dropped: ['V'], signatures: [{ site: 'H', signature: hSig }, { site: 'C', signature: cSig2 }, { site: 'P', signature: pSig }, { site: 'V', signature: vSig }] };
    await fake.sendTo('V', toV);
    await fake.sendTo('H', toH);
    const hRefused = await waitEvent(edges[1], 'secagg_refused', (e) => e.experiment === 'exp-lie');
    assert.match(String(hRefused.reason), /only 2 member\(s\) of this site's group signed the survivor set it was told \(threshold 3\)/);
    assert.match((await waitFor('H to report its refusal', () => fake.of('secagg_refused', 'H').find((m) => m.experiment === 'exp-lie'))).reason, /signed the survivor set/);
    // V's story is consistent with 3 signatures: it answers — with seed shares only.
    const vAnswer = await r.from('V', 'secagg_unmask_res');
    assert.equal(vAnswer.keyShares.length, 0);
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(fake.of('secagg_unmask_res', 'H').filter((m) => m.experiment === 'exp-lie').length, 0, 'H sent nothing');
    const keySharesOfV = fake.receivedFrom.filter((x) => x.m.type === 'secagg_unmask_res' && x.m.experiment === 'exp-lie').flatMap((x) => (x.m as MessageOf<'secagg_unmask_res'>).keyShares).filter((k) => k.of === 'V');
    assert.equal(keySharesOfV.length, 0, "no honest site revealed a share of V's mask key");
  });
});
