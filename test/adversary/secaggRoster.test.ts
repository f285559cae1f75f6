/**
 * An actively malicious coordinator against a real edge process in SecAgg+: it composes the
 * roster, the graph and the threshold, and picks which fit_ins carry security at all. For each
 * attack the edge must refuse with the reason in its log and in a fit_failed to the
 * coordinator, and send no share box (so no secret of its own leaves) and no update.
 */
import assert from 'node:assert/strict';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { ephemeralAdminKey } from '../../shared/secure/trust/adminKey.js';
import { issueRevocationList, issueSiteCertificate } from '../../shared/secure/trust/adminSigning.js';
import { FakeCoordinator } from '../helpers/fakeCoordinator.js';
import { stopProc } from '../helpers/federation.js';
import { makeTempDir } from '../helpers/paths.js';
import { fitIns, ScriptedSecureRound, settled, startEdge, waitEvent, type EdgeUnderTest } from './harness.js';

describe('adversary: SecAgg+ rosters from a malicious coordinator (real edge process)', function () {
  this.timeout(120_000);
  const t = makeTempDir();
  const fake = new FakeCoordinator();
  let victim: EdgeUnderTest;
  let strict: EdgeUnderTest;
  let n = 0;

  before(async () => {
    await fake.start();
    victim = await startEdge(fake, t.dir, 'victim');
    strict = await startEdge(fake, t.dir, 'strict', { args: ['--require-security', 'secure'], seed: 2 });
    await waitEvent(victim, 'connected');
    await waitEvent(strict, 'connected');
  });
  after(async () => {
    if (process.env.FEDMED_TEST_DEBUG) console.log(victim.output().slice(-8000));
    await stopProc(victim);
    await stopProc(strict);
    await fake.close();
    t.cleanup();
  });

  /** A fresh round of a fresh experiment with `peers` certified peers, up to the honest rosters. */
  async function round(peers: number, config?: { neighbours?: number; threshold?: number }) {
    const r = new ScriptedSecureRound(fake, `exp-${++n}`, 1, ['victim'], Array.from({ length: peers }, (_, i) => fake.certifiedPeer(`peer-${n}-${i}`)), config);
    return { r, rosters: await r.keys() };
  }

  /** The victim refused this roster: reason logged and reported, no shares sent, no update. */
  async function refused(r: ScriptedSecureRound, roster: MessageOf<'secagg_roster'>, reason: RegExp): Promise<void> {
    await fake.sendTo('victim', roster);
    const failed = await r.from('victim', 'fit_failed');
    assert.match(failed.reason, reason);
    assert.ok(victim.event('secagg_refused').some((e) => e.experiment === r.experiment && reason.test(String(e.reason))), victim.output().slice(-2000));
    assert.ok(fake.of('secagg_refused', 'victim').some((m) => m.experiment === r.experiment && reason.test(m.reason)), 'the refusal is reported to the coordinator');
    assert.equal(fake.of('secagg_shares', 'victim').filter((m) => m.experiment === r.experiment).length, 0, 'no share box left the site');
    assert.equal(fake.of('fit_res', 'victim').filter((m) => m.experiment === r.experiment).length, 0, 'no update left the site');
  }

  it('the honest roster is accepted (the harness is sound): the site shares its keys', async () => {
    const { r, rosters } = await round(2);
    await fake.sendTo('victim', rosters.get('victim')!);
    const shares = await r.from('victim', 'secagg_shares');
    assert.deepEqual(shares.boxes.map((b) => b.to).sort(), [`peer-${n}-0`, `peer-${n}-1`]);
    await fake.sendTo('victim', { type: 'round_cancel', experiment: r.experiment, round: 1, reason: 'test over' });
    await settled(victim, r.experiment);
  });

  it('a Sybil member (certified by a key other than the federation admin\'s) is refused', async () => {
    const { r, rosters } = await round(2);
    const roster = rosters.get('victim')!;
    const sybil = roster.members[1];
    const other = ephemeralAdminKey();
    const fakeCert = issueSiteCertificate(other, { site: sybil.site, identityKey: sybil.certificate.body.identityKey, encryptionKey: sybil.certificate.body.encryptionKey });
    await refused(r, { ...roster, members: roster.members.map((m) => (m.site === sybil.site ? { ...m, certificate: fakeCert } : m)) }, /roster member .* refused: .*another federation/);
  });

  it('a member revoked by the admin (the site holds the newer revocation list) is refused', async () => {
    const { r, rosters } = await round(2);
    const roster = rosters.get('victim')!;
    const revoked = roster.members.find((m) => m.site !== 'victim')!;
    await fake.sendTo('victim', { type: 'revocations', list: issueRevocationList(fake.admin, null, [{ serial: revoked.certificate.body.serial, subject: `site ${revoked.site}` }]) });
    await waitEvent(victim, 'revocations_updated');
    await refused(r, roster, /refused: .*revoked by the federation admin/);
  });

  it('a group smaller than 3 holders, and a threshold below ⌊2h/3⌋ + 1, are refused', async () => {
    {
      const { r, rosters } = await round(2);
      const roster = rosters.get('victim')!;
      const keep = roster.members.slice(0, 2).map((m) => m.site);
      await refused(r, { ...roster, neighbours: 1, participants: [...keep].sort(), members: roster.members.slice(0, 2) }, /share group of 2 holder\(s\) is below this site's minimum of 3/);
    }
    {
      const { r, rosters } = await round(3);
      await refused(r, { ...rosters.get('victim')!, threshold: 2 }, /threshold 2 for 4 holders is outside what this site accepts \(3–4/);
    }
  });

  it('a graph other than the public one (a hand-picked neighbourhood) is refused', async () => {
    const { r, rosters } = await round(6, { neighbours: 2 });
    const roster = rosters.get('victim')!;
    const mine = roster.members.map((m) => m.site);
    const intruder = roster.participants.find((s) => !mine.includes(s))!;
    const entry = rosters.get(intruder)!.members.find((m) => m.site === intruder)!;
    await refused(r, { ...roster, members: [...roster.members.slice(0, -1), entry] }, /are not this site's neighbours in the public graph/);
  });

  it('withholding the share relay (so the site would mask with too few pairwise masks) is refused: no masked input', async () => {
    const { r, rosters } = await round(3);
    await fake.sendTo('victim', rosters.get('victim')!);
    await r.from('victim', 'secagg_shares');
    // The peers' boxes for the victim are never relayed: alone, its self mask would be removable.
    await fake.sendTo('victim', { type: 'secagg_relay', experiment: r.experiment, round: 1, session: r.params.session, boxes: [] });
    const failed = await r.from('victim', 'fit_failed');
    assert.match(failed.reason, /only 0 neighbour\(s\) relayed shares to this site; its masked input needs at least 2 pairwise masks/);
    assert.equal(fake.of('fit_res', 'victim').filter((m) => m.experiment === r.experiment).length, 0, 'no masked input left the site');
  });

  it('a fit_ins without security for an experiment the site trained under SecAgg+, or for a site that requires it, is refused: nothing released', async () => {
    const { r, rosters } = await round(2);
    await fake.sendTo('victim', rosters.get('victim')!);
    await r.from('victim', 'secagg_shares');
    await fake.sendTo('victim', { type: 'round_cancel', experiment: r.experiment, round: 1, reason: 'test over' });
    await settled(victim, r.experiment);
    const downgrade = fitIns(r.experiment, 2);
    await fake.sendTo('victim', downgrade.message, downgrade.payload);
    const failed = await new ScriptedSecureRound(fake, r.experiment, 2, ['victim'], []).from('victim', 'fit_failed');
    assert.match(failed.reason, new RegExp(`experiment ${r.experiment} ran under secagg since round 1; this round asks for plain`));
    assert.equal(fake.of('fit_res', 'victim').filter((m) => m.experiment === r.experiment).length, 0);
    // A site whose operator requires secure aggregation refuses a plain round of a new experiment.
    const plain = fitIns('exp-plain', 1);
    await fake.sendTo('strict', plain.message, plain.payload);
    const strictFailed = await new ScriptedSecureRound(fake, 'exp-plain', 1, ['strict'], []).from('strict', 'fit_failed');
    assert.match(strictFailed.reason, /requires secure aggregation \(SecAgg\+ or CKKS\) and the round is not securely aggregated/);
    assert.equal(fake.of('fit_res', 'strict').length, 0);
    assert.deepEqual(strict.event('fit_refused').map((e) => e.kind), ['policy'], 'refused, and logged locally');
    assert.equal(strict.event('fit_started').length, 0);
  });
});
