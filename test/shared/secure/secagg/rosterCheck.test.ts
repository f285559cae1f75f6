/**
 * The site's defences against an actively malicious coordinator in SecAgg+, in process: the
 * roster checks (certified members only, the public graph, group size and threshold) and the
 * consistency round (t matching signatures on the survivor set before any share leaves).
 * The same attacks run against real edge processes in test/adversary/.
 */
import assert from 'node:assert/strict';
import { generateIdentity, type Identity } from '../../../../shared/secure/identity.js';
import { generateEncryptionKey } from '../../../../shared/secure/ckks/siteEncryptionKey.js';
import type { MessageOf } from '../../../../shared/protocol/messages.js';
import { SecAggClient } from '../../../../shared/secure/secagg/secaggClient.js';
import { SecAggProtocolError } from '../../../../shared/secure/secagg/secaggErrors.js';
import { maxWeightFor } from '../../../../shared/secure/secagg/secaggParams.js';
import { newSession, SecAggServer } from '../../../../shared/secure/secagg/secaggServer.js';
import { signSurvivors } from '../../../../shared/secure/secagg/consistencyRound.js';
import { ephemeralAdminKey } from '../../../../shared/secure/trust/adminKey.js';
import { issueRevocationList, issueSiteCertificate } from '../../../../shared/secure/trust/adminSigning.js';
import type { SiteCertificate } from '../../../../shared/secure/trust/certificates.js';
import { FederationTrust } from '../../../../shared/secure/trust/federationTrust.js';

const admin = ephemeralAdminKey();
const outsider = ephemeralAdminKey();

interface Party {
  name: string;
  identity: Identity;
  certificate: SiteCertificate;
}

function party(name: string, by = admin): Party {
  const identity = generateIdentity();
  return { name, identity, certificate: issueSiteCertificate(by, { site: name, identityKey: identity.publicKeyB64, encryptionKey: generateEncryptionKey().publicB64 }) };
}

/** n parties, an honest server and clients that trust `trust`, up to the rosters. */
function setUp(n: number, o: { trust?: FederationTrust; config?: { neighbours?: number; threshold?: number } } = {}) {
  const parties = Array.from({ length: n }, (_, i) => party(`s${i}`));
  const trust = o.trust ?? new FederationTrust(admin.publicKeyB64);
  const params = { mode: 'secagg' as const, session: newSession(), bits: 16, range: 1, maxWeight: maxWeightFor(n, 16), noiseStddev: 0 };
  const certs = new Map(parties.map((p) => [p.name, p.certificate]));
  const server = new SecAggServer({ experiment: 'e', round: 1, params, config: o.config, sites: parties.map((p) => p.name), certificate: (s) => certs.get(s)!, vectorLength: 9 });
  const clients = parties.map((p) => new SecAggClient(p.name, { experiment: 'e', round: 1 }, params, p.identity.privateKey, trust));
  clients.forEach((c, i) => server.receiveKeys(parties[i].name, c.keys()));
  const rosters = server.closeKeys();
  return { parties, params, server, clients, rosters, trust };
}

/** setUp() carried honestly through shares and relays (and, with `mask`, masking zero vectors). */
async function relayed(n: number, o: { mask?: boolean } = {}) {
  const r = setUp(n);
  const shares = await Promise.all(r.clients.map((c, i) => c.shares(r.rosters.get(r.parties[i].name)!)));
  shares.forEach((m, i) => r.server.receiveShares(r.parties[i].name, m));
  const relays = r.server.closeShares();
  if (o.mask) {
    r.clients.forEach((c, i) => c.receive(relays.get(r.parties[i].name)!));
    r.clients.forEach((c) => c.mask(new Uint32Array(9)));
  }
  return { ...r, relays };
}

const refuses = (re: RegExp) => (e: unknown) => e instanceof SecAggProtocolError && re.test((e as Error).message);

describe('shared/secure/secagg: a site refuses what an active coordinator could exploit', function () {
  this.timeout(30_000);

  it('a Sybil member whose certificate the federation admin did not sign', async () => {
    const { clients, rosters, parties } = setUp(4);
    const roster = rosters.get('s0')!;
    const sybil = party('s3', outsider); // same name as a real member, certified by another "admin"
    const forged = { ...roster, members: roster.members.map((m) => (m.site === 's3' ? { ...m, certificate: sybil.certificate } : m)) };
    await assert.rejects(clients[0].shares(forged), refuses(/roster member s3 refused: .*another federation/));
    void parties;
  });

  it('a member whose signed keys are not signed by its certified identity key', async () => {
    const { clients, rosters } = setUp(4);
    const roster = rosters.get('s0')!;
    const forged = { ...roster, members: roster.members.map((m) => (m.site === 's2' ? { ...m, cPk: roster.members[0].cPk } : m)) };
    await assert.rejects(clients[0].shares(forged), refuses(/not signed by its certified identity key/));
  });

  it('a revoked member', async () => {
    const t = new FederationTrust(admin.publicKeyB64);
    const { clients, rosters, parties } = setUp(4, { trust: t });
    t.acceptRevocations(issueRevocationList(admin, null, [{ serial: parties[2].certificate.body.serial, subject: 'site s2' }]));
    await assert.rejects(clients[0].shares(rosters.get('s0')!), refuses(/s2 refused: .*revoked/));
  });

  it('a group smaller than 3, a threshold below ⌊2h/3⌋ + 1, and a graph other than the public one', async () => {
    {
      const { clients, rosters } = setUp(4);
      const r = rosters.get('s0')!;
      // Drop two neighbours and claim a graph of degree 1.
      const small = { ...r, neighbours: 1, participants: ['s0', 's1'], members: r.members.filter((m) => m.site === 's0' || m.site === 's1') };
      await assert.rejects(clients[0].shares(small), refuses(/share group of 2 holder\(s\) is below this site's minimum of 3/));
    }
    {
      const { clients, rosters } = setUp(4);
      await assert.rejects(clients[0].shares({ ...rosters.get('s0')!, threshold: 2 }), refuses(/threshold 2 for 4 holders is outside what this site accepts \(3–4/));
    }
    {
      const { clients, rosters } = setUp(10, { config: { neighbours: 4 } });
      const r = rosters.get('s0')!;
      const mine = r.members.map((m) => m.site);
      // Swap one neighbour for a certified participant that is not its neighbour in the public graph.
      const intruder = r.participants.find((s) => !mine.includes(s))!;
      const other = rosters.get(intruder)!.members.find((m) => m.site === intruder)!;
      const wrong = { ...r, members: [...r.members.slice(0, -1), other] };
      await assert.rejects(clients[0].shares(wrong), refuses(/are not this site's neighbours in the public graph/));
      // The same roster under a different claimed degree: also refused.
      await assert.rejects(clients[0].shares({ ...r, neighbours: 6 }), refuses(/public graph/));
    }
  });

  it('a relay with too few boxes (the self mask alone would be removable) is refused before masking', async () => {
    const { clients, relays } = await relayed(4);
    const relay = relays.get('s0')!;
    assert.throws(() => clients[0].receive({ ...relay, boxes: [] }), refuses(/only 0 neighbour\(s\) relayed shares .* at least 2 pairwise masks \(threshold 3\)/));
    assert.throws(() => clients[0].receive({ ...relay, boxes: relay.boxes.slice(0, 1) }), refuses(/only 1 neighbour/));
  });

  it('consistency round: different survivor sets told to different sites make every honest site refuse to unmask', async () => {
    const { clients, parties } = await relayed(4, { mask: true });
    const session = clients[0].session;
    // The coordinator tells s0 and s1 that s3 survived, s2 that s3 dropped.
    const survivedSet = ['s0', 's1', 's2', 's3'];
    const droppedSet = ['s0', 's1', 's2'];
    const sig = (i: number, set: string[]) => clients[i].consistency({ type: 'secagg_consistency', ...session, survivors: set }).signature;
    const sigA = [sig(0, survivedSet), sig(1, survivedSet)];
    const sigB = sig(2, droppedSet);
    // To s2 (who signed "s3 dropped"): ask for s3's mask key with whatever signatures exist.
    const toS2: MessageOf<'secagg_unmask'> = { type: 'secagg_unmask', ...session, survivors: ['s0', 's1', 's2'], dropped: ['s3'], signatures: [{ site: 's0', signature: sigA[0] }, { site: 's1', signature: sigA[1] }, { site: 's2', signature: sigB }] };
    assert.throws(() => clients[2].unmask(toS2), refuses(/only 1 member\(s\) of this site's group signed the survivor set it was told \(threshold 3\)/));
    // A colluder's signature does not help either: s3 signing "s3 dropped" is not a survivor's signature.
    const s3sigDropped = signSurvivors(parties[3].identity.privateKey, 's3', session, droppedSet);
    assert.throws(() => clients[2].unmask({ ...toS2, signatures: [...toS2.signatures, { site: 's3', signature: s3sigDropped }] }), refuses(/only 1 member\(s\)/));
    // And a request that contradicts the set the site signed is refused even with enough signatures.
    const s3sigSurvived = signSurvivors(parties[3].identity.privateKey, 's3', session, survivedSet);
    const toS0: MessageOf<'secagg_unmask'> = { type: 'secagg_unmask', ...session, survivors: ['s0', 's1', 's2'], dropped: ['s3'], signatures: [{ site: 's0', signature: sigA[0] }, { site: 's1', signature: sigA[1] }, { site: 's3', signature: s3sigSurvived }] };
    assert.throws(() => clients[0].unmask(toS0), refuses(/contradicts the signed survivor set/));
    // With the request the signed set implies, s0 answers — seed shares only.
    const ok = clients[0].unmask({ ...toS0, survivors: ['s0', 's1', 's2', 's3'], dropped: [] });
    assert.equal(ok.keyShares.length, 0);
    assert.deepEqual(ok.seedShares.map((s) => s.of).sort(), ['s0', 's1', 's2', 's3']);
  });

  it('a survivor set that omits the site itself, or names sites that never took part, is not signed', async () => {
    const { clients } = await relayed(3, { mask: true });
    const session = clients[0].session;
    assert.throws(() => clients[0].consistency({ type: 'secagg_consistency', ...session, survivors: ['s1', 's2'] }), refuses(/omits this site/));
    assert.throws(() => clients[1].consistency({ type: 'secagg_consistency', ...session, survivors: ['s0', 's1', 's2', 'ghost'] }), refuses(/never participants: ghost/));
  });
});
