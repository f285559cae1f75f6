import assert from 'node:assert/strict';
import { generateIdentity } from '../../../../shared/secure/identity.js';
import { decodeSum, encodeUpdate } from '../../../../shared/secure/secagg/fixedPoint.js';
import { runInProcessRound, type DropPhase, type InProcessSite } from '../../../../shared/secure/secagg/inProcessRound.js';
import { applyMasks } from '../../../../shared/secure/secagg/maskStream.js';
import { applyMasksParallel } from '../../../../shared/secure/secagg/parallelMasks.js';
import { neighbourGraph } from '../../../../shared/secure/secagg/neighbourGraph.js';
import { SecAggClient } from '../../../../shared/secure/secagg/secaggClient.js';
import { SecAggAbort, SecAggConfigError, SecAggProtocolError } from '../../../../shared/secure/secagg/secaggErrors.js';
import { checkNoWrap, checkThreshold, maxWeightFor, quantLevels, thresholdFor } from '../../../../shared/secure/secagg/secaggParams.js';
import { newSession, SecAggServer } from '../../../../shared/secure/secagg/secaggServer.js';
import { signSecAgg } from '../../../../shared/secure/secagg/secaggSignature.js';
import { openShares, sealShares } from '../../../../shared/secure/secagg/shareBox.js';
import { SeededRng } from '../../../../shared/random/seededRng.js';
import { generateEncryptionKey } from '../../../../shared/secure/ckks/siteEncryptionKey.js';
import { ephemeralAdminKey } from '../../../../shared/secure/trust/adminKey.js';
import { issueSiteCertificate } from '../../../../shared/secure/trust/adminSigning.js';
import { FederationTrust } from '../../../../shared/secure/trust/federationTrust.js';

/** The federation of these tests: every site is certified by this admin key. */
const ADMIN = ephemeralAdminKey();
const TRUST = new FederationTrust(ADMIN.publicKeyB64);
const round = (o: Omit<Parameters<typeof runInProcessRound>[0], 'trust'>) => runInProcessRound({ trust: TRUST, ...o });

const BITS = 16;
const RANGE = 1;
const STEP = RANGE / quantLevels(BITS);

interface Site extends InProcessSite {
  values: Float32Array;
  weight: number;
  /** A copy of the encoded vector (the original is consumed by masking). */
  plain: Uint32Array;
}

function makeSites(n: number, d: number, seed = 1, drop: Record<string, DropPhase> = {}): Site[] {
  const rng = new SeededRng(seed);
  return Array.from({ length: n }, (_, k) => {
    const name = `site-${String(k).padStart(3, '0')}`;
    const values = Float32Array.from({ length: d }, () => (rng.next() * 2 - 1) * 0.8);
    const weight = 1 + Math.floor(rng.next() * 50);
    const encoded = encodeUpdate(values, weight, { bits: BITS, range: RANGE }).words;
    const identity = generateIdentity();
    const certificate = issueSiteCertificate(ADMIN, { site: name, identityKey: identity.publicKeyB64, encryptionKey: generateEncryptionKey().publicB64 });
    return { name, identity, certificate, values, weight, encoded, plain: encoded.slice(), dropBefore: drop[name] };
  });
}

const params = (n: number) => ({ mode: 'secagg' as const, bits: BITS, range: RANGE, maxWeight: maxWeightFor(n, BITS), noiseStddev: 0 });

/** The secure sum must equal the plain weighted sum of the contributors within the quantisation bound. */
function assertMatchesPlain(sites: Site[], sum: Uint32Array, contributors: string[]): void {
  const dec = decodeSum(sum, { bits: BITS, range: RANGE });
  const included = sites.filter((s) => contributors.includes(s.name));
  assert.equal(dec.totalWeight, included.reduce((a, s) => a + s.weight, 0));
  // Exactness in the integer domain: the masks cancel exactly.
  const exact = new Uint32Array(sum.length);
  for (const s of included) for (let i = 0; i < exact.length; i++) exact[i] += s.plain[i];
  assert.deepEqual(sum, exact);
  // And the decoded value is the float weighted sum within Σ w_k · step (stochastic rounding error ≤ 1 step per value).
  const bound = included.reduce((a, s) => a + s.weight, 0) * STEP;
  for (let i = 0; i < dec.weightedSum.length; i++) {
    const want = included.reduce((a, s) => a + s.weight * s.values[i], 0);
    assert.ok(Math.abs(dec.weightedSum[i] - want) <= bound + 1e-9, `value ${i}: ${dec.weightedSum[i]} vs ${want}`);
  }
}

describe('shared/secure/secagg (SecAgg+)', function () {
  this.timeout(60_000);

  it('fixed-point encoding is unbiased (stochastic rounding) and the int32 reading of the sum is exact', () => {
    const x = new Float32Array(20000).fill(0.3 * STEP); // between two levels
    const enc = encodeUpdate(x, 1, { bits: BITS, range: RANGE });
    const ints = new Int32Array(enc.words.buffer);
    let ones = 0;
    for (let i = 0; i < x.length; i++) {
      assert.ok(ints[i] === 0 || ints[i] === 1);
      ones += ints[i];
    }
    // Binomial(20000, 0.3): mean 6000, sd ≈ 65 — 6 sd bounds.
    assert.ok(Math.abs(ones - 6000) < 390, `${ones} round-ups`);
    assert.equal(ints[x.length], 1);
    const neg = encodeUpdate(Float32Array.of(-5, 5, -0.5), 3, { bits: BITS, range: RANGE });
    assert.equal(neg.clipped, 2);
    assert.deepEqual(Array.from(new Int32Array(neg.words.buffer)).slice(0, 2), [-3 * quantLevels(BITS), 3 * quantLevels(BITS)]);
  });

  it('adds exact discrete Gaussian noise in the integer domain (distributed DP)', () => {
    const enc = encodeUpdate(new Float32Array(20000), 1, { bits: BITS, range: RANGE, noiseStddev: 4 });
    const ints = new Int32Array(enc.words.buffer).subarray(0, 20000);
    let sum = 0;
    let sq = 0;
    for (const x of ints) {
      assert.ok(Number.isInteger(x));
      sum += x;
      sq += x * x;
    }
    const mean = sum / ints.length;
    const variance = sq / ints.length - mean * mean;
    // Mean 0 (sd of the mean 4/√20000 ≈ 0.03) and variance 16 (relative sd ≈ 1%): loose 6-sd bounds.
    assert.ok(Math.abs(mean) < 0.2, `mean ${mean}`);
    assert.ok(Math.abs(variance - 16) < 1.2, `variance ${variance}`);
  });

  it('masks a slice by seeking the keystream, and two threads give the same vector as one', async () => {
    const masks = [1, 2, 3].map((k) => ({ key: Buffer.alloc(32, k), sign: (k % 2 ? 1 : -1) as 1 | -1 }));
    const n = 700_003;
    const whole = new Uint32Array(n).map((_, i) => i);
    applyMasks(whole, masks);
    const sliced = new Uint32Array(n).map((_, i) => i);
    applyMasks(sliced.subarray(0, 4000), masks);
    applyMasks(sliced.subarray(4000), masks, 4000);
    assert.deepEqual(sliced, whole);
    const shared = new Uint32Array(new SharedArrayBuffer(n * 4)).map((_, i) => i);
    await applyMasksParallel(shared, masks);
    assert.deepEqual(new Uint32Array(shared), whole);
    assert.throws(() => applyMasks(sliced.subarray(3), masks, 3), /multiple of 4/);
  });

  it('refuses parameters whose sum could wrap, and thresholds below a strict majority; the default threshold is the active-server bound', () => {
    assert.deepEqual([3, 4, 5, 6, 9, 10, 21].map((h) => thresholdFor(h)), [3, 3, 4, 5, 7, 7, 15]);
    assert.throws(() => checkNoWrap(10, { bits: 16, maxWeight: maxWeightFor(10, 16) + 1, noiseStddev: 0 }), SecAggConfigError);
    checkNoWrap(10, { bits: 16, maxWeight: maxWeightFor(10, 16), noiseStddev: 0 });
    assert.throws(() => checkNoWrap(100, { bits: 24, maxWeight: 3, noiseStddev: 0 }), /could wrap/);
    assert.throws(() => checkNoWrap(10, { bits: 16, maxWeight: maxWeightFor(10, 16), noiseStddev: 1e6 }), /could wrap/);
    assert.throws(() => checkThreshold(5, 10), /strict majority/);
    assert.throws(() => checkThreshold(11, 10), /strict majority/);
    checkThreshold(6, 10);
    assert.throws(() => checkThreshold(200, 300), /at most 255/);
  });

  it('builds a public k-regular neighbour graph from the session (complete graph when small)', () => {
    const sites = Array.from({ length: 40 }, (_, i) => `s${i}`);
    const g = neighbourGraph(sites, 8, 'session-a');
    for (const [s, nbs] of g) {
      assert.equal(nbs.length, 8);
      for (const nb of nbs) assert.ok(g.get(nb)!.includes(s), 'symmetric');
    }
    assert.deepEqual(neighbourGraph(sites, 8, 'session-a'), g, 'reproducible');
    assert.notDeepEqual(neighbourGraph(sites, 8, 'session-b'), g, 'depends on the session');
    assert.equal(neighbourGraph(sites.slice(0, 5), 8, 'x').get('s0')!.length, 4);
  });

  it('the secure sum equals the plain weighted sum (complete graph, no dropout)', async () => {
    const sites = makeSites(5, 3000);
    const r = await round({ sites, params: params(5) });
    assertMatchesPlain(sites, r.sum, r.contributors);
    assert.equal(r.contributors.length, 5);
  });

  for (const phase of ['keys', 'shares', 'masked', 'consistency', 'unmask'] as DropPhase[]) {
    it(`recovers when sites drop before the ${phase} phase (SecAgg+ graph, 30 sites)`, async () => {
      const drop = { 'site-003': phase, 'site-017': phase, 'site-024': phase };
      const sites = makeSites(30, 500, 7, drop);
      // 14 neighbours: groups of 15 with threshold 11 tolerate 4 dropouts each (the active-coordinator bound costs dropout tolerance).
      const r = await round({ sites, params: params(30), config: { neighbours: 14 } });
      const expectIn = phase === 'unmask' || phase === 'consistency' ? 30 : 27;
      assert.equal(r.contributors.length, expectIn);
      assertMatchesPlain(sites, r.sum, r.contributors);
    });
  }

  it('never holds an individual update: every vector the server sees is masked', async () => {
    const sites = makeSites(7, 4000, 3, { 'site-002': 'masked', 'site-004': 'unmask' });
    const held: { what: string; v: Uint32Array }[] = [];
    const r = await round({ sites, params: params(7), observe: (what, v) => held.push({ what, v: v.slice() }) });
    assertMatchesPlain(sites, r.sum, r.contributors);
    assert.ok(held.length >= 5 + 1 + 5);
    // Final state aside (the aggregate is the output), no vector shares more than chance agreement
    // with any single site's encoded update (a masked word equals the true word w.p. 2^-32).
    for (const { what, v } of held.slice(0, -1)) {
      for (const s of sites) {
        let equal = 0;
        for (let i = 0; i < v.length; i++) if (v[i] === s.plain[i]) equal++;
        assert.ok(equal <= 2, `${what} agrees with ${s.name}'s update in ${equal} words`);
      }
    }
  });

  it('aborts, publishing nothing, when fewer than the threshold survive', async () => {
    const sites = makeSites(5, 100, 9, { 'site-000': 'masked', 'site-001': 'masked', 'site-002': 'masked' });
    await assert.rejects(round({ sites, params: params(5) }), (e: Error) => e instanceof SecAggAbort && /threshold is 4/.test(e.message));
  });

  it('rejects forged, replayed, duplicate, wrong-phase and wrong-length messages', async () => {
    const sites = makeSites(4, 50);
    const session = newSession();
    const p = { ...params(4), session };
    const certificates = new Map(sites.map((s) => [s.name, s.certificate]));
    const server = new SecAggServer({ experiment: 'exp', round: 3, params: p, sites: sites.map((s) => s.name), certificate: (s) => certificates.get(s)!, vectorLength: 51 });
    const clients = sites.map((s) => new SecAggClient(s.name, { experiment: 'exp', round: 3 }, p, s.identity.privateKey, TRUST));
    const adv = clients.map((c) => c.keys());
    // A site claiming another's identity: signed with the wrong key.
    assert.throws(() => server.receiveKeys('site-001', { ...adv[0], cPk: adv[0].cPk }), /not signed by its certified identity key/);
    // Replay from another round / session.
    const other = new SecAggClient('site-000', { experiment: 'exp', round: 2 }, { ...p, session: newSession() }, sites[0].identity.privateKey, TRUST).keys();
    assert.throws(() => server.receiveKeys('site-000', other), /not the open round/);
    adv.forEach((m, i) => server.receiveKeys(sites[i].name, m));
    assert.throws(() => server.receiveKeys('site-000', adv[0]), /twice/);
    const rosters = server.closeKeys();
    // Wrong phase: keys after the phase closed.
    const late = new SecAggClient('site-000', { experiment: 'exp', round: 3 }, p, sites[0].identity.privateKey, TRUST).keys();
    assert.throws(() => server.receiveKeys('site-000', late), SecAggProtocolError);
    const shares = await Promise.all(clients.map((c, i) => c.shares(rosters.get(sites[i].name)!)));
    // Tampered signature content.
    assert.throws(() => server.receiveShares('site-000', { ...shares[0], boxes: shares[0].boxes.slice(1) }), SecAggProtocolError);
    shares.forEach((m, i) => server.receiveShares(sites[i].name, m));
    const relays = server.closeShares();
    // A tampered box fails authentication at the recipient.
    const relay1 = relays.get('site-001')!;
    const flipped = { ...relay1, boxes: relay1.boxes.map((b, i) => (i === 0 ? { ...b, box: (b.box[5] === 'A' ? 'B' : 'A') + b.box.slice(1) } : b)) };
    assert.throws(() => clients[1].receive({ ...flipped, boxes: [{ ...flipped.boxes[0], box: flipped.boxes[0].box.slice(0, 5) + (flipped.boxes[0].box[5] === 'A' ? 'B' : 'A') + flipped.boxes[0].box.slice(6) }] }), /failed authentication/);
    clients.forEach((c, i) => c.receive(relays.get(sites[i].name)!));
    const masked = clients.map((c, i) => c.mask(sites[i].encoded));
    const header = (i: number) => {
      const h = { type: 'fit_res' as const, experiment: 'exp', round: 3, numExamples: 1, metrics: { loss: 0, accuracy: 0 }, signature: undefined as string | undefined };
      h.signature = clients[i].signResult(h, new Uint8Array(masked[i].buffer));
      return h;
    };
    assert.throws(() => server.receiveMasked('site-000', header(0), new Uint8Array(masked[0].buffer).subarray(0, 200)), /expected 51 uint32/);
    // A payload altered after signing.
    const altered = new Uint8Array(masked[0].buffer).slice();
    altered[0] ^= 1;
    assert.throws(() => server.receiveMasked('site-000', header(0), altered), /not signed/);
    server.receiveMasked('site-000', header(0), new Uint8Array(masked[0].buffer));
    assert.throws(() => server.receiveMasked('site-000', header(0), new Uint8Array(masked[0].buffer)), /twice/);
    server.receiveMasked('site-001', header(1), new Uint8Array(masked[1].buffer));
    server.receiveMasked('site-002', header(2), new Uint8Array(masked[2].buffer));
    const survivorSets = server.closeMasked(); // site-003 counts as dropped: its key will be asked for
    // ...so its late masked input must be refused.
    assert.throws(() => server.receiveMasked('site-003', header(3), new Uint8Array(masked[3].buffer)), /too late/);
    // Consistency round: every survivor signs the survivor set; a forged signature is refused.
    const sigs = [0, 1, 2].map((i) => clients[i].consistency(survivorSets.get(sites[i].name)!));
    assert.throws(() => server.receiveConsistency('site-000', sigs[1]), /does not verify/);
    sigs.forEach((m, i) => server.receiveConsistency(sites[i].name, m));
    const requests = server.closeConsistency();
    // A client refuses to reveal both secrets of one site.
    const bad = { ...requests.get('site-000')!, survivors: [...requests.get('site-000')!.survivors, 'site-003'] };
    assert.throws(() => clients[0].unmask(bad), /both survivor and dropped/);
    const answers = [0, 1, 2].map((i) => clients[i].unmask(requests.get(sites[i].name)!));
    // A truncated share is refused without recording anything from that answer.
    const truncated = { ...answers[0], seedShares: answers[0].seedShares.map((s, i) => (i === 0 ? { ...s, share: s.share.slice(0, 40) } : s)) };
    assert.throws(() => server.receiveUnmask('site-000', truncated), SecAggProtocolError);
    answers.forEach((a, i) => server.receiveUnmask(sites[i].name, a));
    const sum = await server.finish();
    assertMatchesPlain(sites, sum, ['site-000', 'site-001', 'site-002']);
  });

  it('detects tampered shares at reconstruction instead of publishing a wrong sum', async () => {
    const sites = makeSites(5, 100, 11, { 'site-004': 'masked' });
    // A site that corrupts the shares it returns (re-signing them, as a malicious site could).
    await assert.rejects(
      round({
        sites,
        params: params(5),
        tamper: (phase, site, m) => {
          if (phase !== 'unmask' || site !== 'site-000') return;
          const res = m as { seedShares: { share: string }[]; keyShares: { share: string }[]; signature: string };
          for (const list of [res.seedShares, res.keyShares]) {
            for (const s of list) {
              const raw = Buffer.from(s.share, 'base64url');
              raw[0] ^= 0x5a;
              s.share = raw.toString('base64url');
            }
          }
          // ...and signs them with its own key, so they pass every message check.
          res.signature = signSecAgg(sites[0].identity.privateKey, site, res);
        },
      }),
      (e: Error) => e instanceof SecAggAbort && /does not match its (commitment|advertised key) \(tampered shares\)/.test(e.message),
    );
  });

  it('share boxes are bound to the session and the (sender, recipient) pair', () => {
    const key = Buffer.alloc(32, 7);
    const a = new Uint8Array(33).fill(1);
    const b = new Uint8Array(33).fill(2);
    const box = sealShares(key, 's1', 'x', 'y', a, b);
    assert.deepEqual(Buffer.from(openShares(key, 's1', 'x', 'y', box).keyShare), Buffer.from(b));
    assert.throws(() => openShares(key, 's2', 'x', 'y', box), /failed authentication/);
    assert.throws(() => openShares(key, 's1', 'x', 'z', box), /failed authentication/);
  });
});
