/**
 * The coordinator's half of SecAgg+ for one round, independent of the transport and of timing
 * (the round driver decides when a phase closes). It only ever holds masked vectors and their
 * running sum; it reconstructs exactly what the protocol permits — the self-mask seeds of sites
 * whose masked input it summed, the mask keys of sites that shared keys but sent no input — and
 * refuses a masked input that arrives after it has declared that site dropped (its key may
 * already be out), so it can never hold both secrets of one site.
 *
 * Phases: keys (U1 advertise) → shares (U2 share) → masked (U3 send input) → consistency
 * (survivors sign U3) → unmask → done.
 */
import { createHash, randomBytes, type KeyObject } from 'node:crypto';
import { combine } from 'shamir-secret-sharing';
import { publicKeyFromB64 } from '../identity.js';
import type { MessageOf, SecAggMember } from '../../protocol/messages.js';
import type { SiteCertificate } from '../trust/certificates.js';
import { verifySurvivors } from './consistencyRound.js';
import { pairKey, publicB64Of, seedCommitment, selfMaskKey, x25519PrivateFromRaw, x25519PublicFromB64 } from './keyAgreement.js';
import { applyMasks, type Mask } from './maskStream.js';
import { applyMasksParallel } from './parallelMasks.js';
import { neighbourGraph, type NeighbourGraph } from './neighbourGraph.js';
import { checkNoWrap, MIN_HOLDERS, neighboursFor, thresholdFor, type SecAggConfig, type SecAggRoundParams } from './secaggParams.js';
import { SecAggAbort, SecAggProtocolError } from './secaggErrors.js';
import { verifySecAgg } from './secaggSignature.js';
import { SHARE_BYTES } from './shareBox.js';

const HASH_BLOCK_WORDS = 64 * 1024;

export type SecAggPhase = 'keys' | 'shares' | 'masked' | 'consistency' | 'unmask' | 'done';

/** A fresh random session id (128 bits, base64url). */
export function newSession(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * Test instrumentation: called with every vector the server holds (each masked input as it
 * arrives, and the running sum after each unmasking step), so tests can prove none of them is a
 * single site's update.
 */
export type VectorObserver = (what: string, vector: Uint32Array) => void;

export interface SecAggServerOptions {
  experiment: string;
  round: number;
  params: SecAggRoundParams;
  config?: Pick<SecAggConfig, 'neighbours' | 'threshold'>;
  /** Sites sampled for the round. */
  sites: readonly string[];
  /** The admin's certificate of a site (its identity key checks the site's messages; rosters carry it). */
  certificate: (site: string) => SiteCertificate;
  /** d + 1 (the values and the weight). */
  vectorLength: number;
  observe?: VectorObserver;
}

export class SecAggServer {
  phase: SecAggPhase = 'keys';
  private readonly keys = new Map<string, MessageOf<'secagg_keys'>>();
  private graph: NeighbourGraph = new Map();
  threshold = 0;
  /** U2: sites whose shares were relayed; boxes per recipient. */
  private readonly shared = new Set<string>();
  private readonly inbox = new Map<string, { from: string; box: string }[]>();
  /** U3: sites whose masked input is in the sum. */
  private readonly contributed = new Set<string>();
  private readonly sum: Uint32Array;
  private survivors: string[] = [];
  private droppedAfterSharing: string[] = [];
  /** Consistency round: survivors' signatures on U3. */
  private readonly survivorSignatures = new Map<string, string>();
  private readonly consistencyAsked = new Set<string>();
  private readonly unmaskAsked = new Set<string>();
  private readonly seedShares = new Map<string, Uint8Array[]>();
  private readonly keyShares = new Map<string, Uint8Array[]>();
  private readonly answered = new Set<string>();
  private readonly identityKeys = new Map<string, KeyObject>();
  private scratch: Uint32Array | null = null;

  constructor(private readonly o: SecAggServerOptions) {
    // Shared memory: unmasking splits the vector between two threads (parallelMasks.ts).
    this.sum = new Uint32Array(new SharedArrayBuffer(o.vectorLength * 4));
  }

  private get session() {
    return { experiment: this.o.experiment, round: this.o.round, session: this.o.params.session };
  }

  private check(site: string, m: MessageOf<'secagg_keys' | 'secagg_shares' | 'secagg_unmask_res' | 'secagg_consistency_sig'>, phase: SecAggPhase): void {
    if (m.experiment !== this.o.experiment || m.round !== this.o.round || m.session !== this.o.params.session) {
      throw new SecAggProtocolError(`${m.type} from ${site} is for ${m.experiment} round ${m.round} session ${m.session}, not the open round (replay or stale message)`, site);
    }
    if (this.phase !== phase) throw new SecAggProtocolError(`${m.type} from ${site} arrived in phase "${this.phase}"`, site);
    if (m.type !== 'secagg_consistency_sig' && !verifySecAgg(this.identityOf(site), site, m)) throw new SecAggProtocolError(`${m.type} from ${site} is not signed by its certified identity key`, site);
  }

  private identityOf(site: string): KeyObject {
    let key = this.identityKeys.get(site);
    if (!key) this.identityKeys.set(site, (key = publicKeyFromB64(this.o.certificate(site).body.identityKey)));
    return key;
  }

  /** Phase keys: a site's advertisement. */
  receiveKeys(site: string, m: MessageOf<'secagg_keys'>): void {
    if (!this.o.sites.includes(site)) throw new SecAggProtocolError(`${site} was not sampled for this round`, site);
    if (this.keys.has(site)) throw new SecAggProtocolError(`${site} advertised keys twice`, site);
    this.check(site, m, 'keys');
    x25519PublicFromB64(m.cPk, `${site}'s cPk`);
    x25519PublicFromB64(m.sPk, `${site}'s sPk`);
    this.keys.set(site, m);
  }

  /** Sites still expected in the current phase. */
  waitingFor(): string[] {
    switch (this.phase) {
      case 'keys':
        return this.o.sites.filter((s) => !this.keys.has(s));
      case 'shares':
        return [...this.keys.keys()].filter((s) => !this.shared.has(s));
      case 'masked':
        return [...this.shared].filter((s) => !this.contributed.has(s));
      case 'consistency':
        return [...this.consistencyAsked].filter((s) => !this.survivorSignatures.has(s));
      case 'unmask':
        return [...this.unmaskAsked].filter((s) => !this.answered.has(s));
      default:
        return [];
    }
  }

  /** Closes the keys phase: builds the neighbour graph over U1 and returns each site's roster. */
  closeKeys(): Map<string, MessageOf<'secagg_roster'>> {
    if (this.phase !== 'keys') throw new SecAggProtocolError(`closeKeys in phase ${this.phase}`);
    const u1 = [...this.keys.keys()].sort();
    if (u1.length < MIN_HOLDERS) throw new SecAggAbort(`only ${u1.length} site(s) advertised keys; secure aggregation needs at least ${MIN_HOLDERS} (each site's shares need ${MIN_HOLDERS} holders)`);
    const k0 = neighboursFor(u1.length, this.o.config?.neighbours);
    const k = k0 % 2 === 1 && k0 < u1.length - 1 ? k0 + 1 : k0;
    this.graph = neighbourGraph(u1, k, this.o.params.session);
    const holders = Math.min(...[...this.graph.values()].map((n) => n.length)) + 1;
    this.threshold = thresholdFor(holders, this.o.config?.threshold);
    checkNoWrap(u1.length, this.o.params);
    const member = (site: string): SecAggMember => {
      const m = this.keys.get(site)!;
      return { site, certificate: this.o.certificate(site), cPk: m.cPk, sPk: m.sPk, seedCommitment: m.seedCommitment, signature: m.signature };
    };
    const out = new Map<string, MessageOf<'secagg_roster'>>();
    // Every site can recompute the whole graph from (participants, neighbours, session).
    for (const site of u1) out.set(site, { type: 'secagg_roster', ...this.session, threshold: this.threshold, neighbours: k, participants: u1, members: [member(site), ...this.graph.get(site)!.map(member)] });
    this.phase = 'shares';
    return out;
  }

  /** Phase shares: a site's sealed boxes, one per neighbour. */
  receiveShares(site: string, m: MessageOf<'secagg_shares'>): void {
    if (!this.keys.has(site)) throw new SecAggProtocolError(`${site} sent shares without having advertised keys`, site);
    if (this.shared.has(site)) throw new SecAggProtocolError(`${site} sent shares twice`, site);
    this.check(site, m, 'shares');
    const nbs = this.graph.get(site)!;
    const to = m.boxes.map((b) => b.to);
    if (to.length !== nbs.length || new Set(to).size !== to.length || !to.every((t) => nbs.includes(t))) {
      throw new SecAggProtocolError(`${site} sent boxes for [${to.join(', ')}]; its neighbours are [${nbs.join(', ')}]`, site);
    }
    this.shared.add(site);
    for (const b of m.boxes) {
      let list = this.inbox.get(b.to);
      if (!list) this.inbox.set(b.to, (list = []));
      list.push({ from: site, box: b.box });
    }
  }

  /** Closes the shares phase: each member of U2 gets the boxes U2 neighbours sent it. */
  closeShares(): Map<string, MessageOf<'secagg_relay'>> {
    if (this.phase !== 'shares') throw new SecAggProtocolError(`closeShares in phase ${this.phase}`);
    if (this.shared.size < this.threshold) throw new SecAggAbort(`only ${this.shared.size} site(s) shared their keys; the threshold is ${this.threshold}`);
    const out = new Map<string, MessageOf<'secagg_relay'>>();
    for (const site of this.shared) out.set(site, { type: 'secagg_relay', ...this.session, boxes: (this.inbox.get(site) ?? []).filter((b) => this.shared.has(b.from)) });
    this.phase = 'masked';
    return out;
  }

  /**
   * Phase masked: adds a site's masked vector (uint32 little-endian) to the running sum after
   * checking its length and signature. Refused after the phase closed: by then the site may have
   * been declared dropped and its mask key requested.
   */
  receiveMasked(site: string, m: MessageOf<'fit_res'>, payload: Uint8Array): number {
    if (this.phase !== 'masked') throw new SecAggProtocolError(`masked input from ${site} arrived in phase "${this.phase}" (too late: the site counts as dropped)`, site);
    if (!this.shared.has(site)) throw new SecAggProtocolError(`${site} sent a masked input without having shared its keys`, site);
    if (this.contributed.has(site)) throw new SecAggProtocolError(`${site} sent its masked input twice`, site);
    const n = this.sum.length;
    if (payload.byteLength !== n * 4) throw new SecAggProtocolError(`masked input from ${site} has ${payload.byteLength} bytes; expected ${n} uint32 values (${n * 4} bytes)`, site);
    if (m.experiment !== this.o.experiment || m.round !== this.o.round) throw new SecAggProtocolError(`masked input from ${site} is for another round`, site);
    let v: Uint32Array;
    if (payload.byteOffset % 4 === 0) v = new Uint32Array(payload.buffer, payload.byteOffset, n);
    else {
      // Not 4-byte aligned inside the socket's buffer: copy once into a reused aligned buffer.
      if (!this.scratch) this.scratch = new Uint32Array(n);
      new Uint8Array(this.scratch.buffer).set(payload);
      v = this.scratch;
    }
    // Hash (for the signature) and add block by block while each block is in cache; if the
    // signature then fails, the vector is subtracted again (exact: arithmetic mod 2^32).
    const hash = createHash('sha256');
    const sum = this.sum;
    for (let start = 0; start < n; start += HASH_BLOCK_WORDS) {
      const end = Math.min(n, start + HASH_BLOCK_WORDS);
      hash.update(new Uint8Array(v.buffer, v.byteOffset + start * 4, (end - start) * 4));
      for (let i = start; i < end; i++) sum[i] += v[i];
    }
    if (!verifySecAgg(this.identityOf(site), site, m, hash.digest('hex'))) {
      for (let i = 0; i < n; i++) sum[i] -= v[i];
      throw new SecAggProtocolError(`masked input from ${site} is not signed by its certified identity key`, site);
    }
    this.o.observe?.(`masked input of ${site}`, v);
    this.contributed.add(site);
    return this.contributed.size;
  }

  /** A site vanished: nothing to do but let waitingFor() forget it (its state stays as it was). */
  dropped(site: string): void {
    if (this.phase === 'keys') this.keys.delete(site);
    else if (this.phase === 'consistency') this.consistencyAsked.delete(site);
    else if (this.phase === 'unmask') this.unmaskAsked.delete(site);
  }

  /** Closes the masked phase: U3 is fixed, and every contributor is asked to sign it (the consistency round). */
  closeMasked(): Map<string, MessageOf<'secagg_consistency'>> {
    if (this.phase !== 'masked') throw new SecAggProtocolError(`closeMasked in phase ${this.phase}`);
    this.survivors = [...this.contributed].sort();
    this.droppedAfterSharing = [...this.shared].filter((s) => !this.contributed.has(s)).sort();
    if (this.survivors.length < this.threshold) throw new SecAggAbort(`only ${this.survivors.length} site(s) sent masked input; the threshold is ${this.threshold}`);
    this.phase = 'consistency';
    const out = new Map<string, MessageOf<'secagg_consistency'>>();
    for (const site of this.survivors) {
      out.set(site, { type: 'secagg_consistency', ...this.session, survivors: this.survivors });
      this.consistencyAsked.add(site);
    }
    return out;
  }

  /** Consistency round: a survivor's signature on U3. */
  receiveConsistency(site: string, m: MessageOf<'secagg_consistency_sig'>): void {
    if (!this.consistencyAsked.has(site)) throw new SecAggProtocolError(`${site} was not asked to sign the survivor set`, site);
    if (this.survivorSignatures.has(site)) throw new SecAggProtocolError(`${site} signed the survivor set twice`, site);
    this.check(site, m, 'consistency');
    if (!verifySurvivors(this.identityOf(site), site, this.session, this.survivors, m.signature)) throw new SecAggProtocolError(`${site}'s signature on the survivor set does not verify`, site);
    this.survivorSignatures.set(site, m.signature);
  }

  /** Closes the consistency round: asks every signer for the shares of its group's survivors and dropped partners, with its group's signatures. */
  closeConsistency(): Map<string, MessageOf<'secagg_unmask'>> {
    if (this.phase !== 'consistency') throw new SecAggProtocolError(`closeConsistency in phase ${this.phase}`);
    this.phase = 'unmask';
    const out = new Map<string, MessageOf<'secagg_unmask'>>();
    for (const site of this.survivorSignatures.keys()) {
      const neighbours = this.graph.get(site)!;
      const group = [site, ...neighbours.filter((s) => this.shared.has(s))];
      const signatures = [site, ...neighbours].filter((s) => this.survivorSignatures.has(s)).map((s) => ({ site: s, signature: this.survivorSignatures.get(s)! }));
      out.set(site, { type: 'secagg_unmask', ...this.session, survivors: group.filter((s) => this.contributed.has(s)), dropped: group.filter((s) => !this.contributed.has(s)), signatures });
      this.unmaskAsked.add(site);
    }
    return out;
  }

  /** Phase unmask: a survivor's shares, each checked to be one the protocol permits. */
  receiveUnmask(site: string, m: MessageOf<'secagg_unmask_res'>): void {
    if (!this.unmaskAsked.has(site)) throw new SecAggProtocolError(`${site} was not asked to unmask`, site);
    if (this.answered.has(site)) throw new SecAggProtocolError(`${site} answered the unmask request twice`, site);
    this.check(site, m, 'unmask');
    const group = new Set([site, ...this.graph.get(site)!]);
    const decode = (share: string, of: string): Uint8Array => {
      const raw = Buffer.from(share, 'base64url');
      if (raw.length !== SHARE_BYTES) throw new SecAggProtocolError(`share of ${of} from ${site} has ${raw.length} bytes, expected ${SHARE_BYTES}`, site);
      return new Uint8Array(raw); // shamir-secret-sharing takes plain Uint8Arrays, not Buffers
    };
    const seeds: [string, Uint8Array][] = [];
    const keys: [string, Uint8Array][] = [];
    for (const { of, share } of m.seedShares) {
      if (!group.has(of) || !this.contributed.has(of)) throw new SecAggProtocolError(`${site} sent a seed share of ${of}, which is not a surviving member of its group`, site);
      seeds.push([of, decode(share, of)]);
    }
    for (const { of, share } of m.keyShares) {
      if (!group.has(of) || this.contributed.has(of) || !this.shared.has(of)) throw new SecAggProtocolError(`${site} sent a key share of ${of}, which did not drop after sharing`, site);
      keys.push([of, decode(share, of)]);
    }
    if (new Set(seeds.map((s) => s[0])).size !== seeds.length || new Set(keys.map((s) => s[0])).size !== keys.length) throw new SecAggProtocolError(`${site} sent two shares of one site`, site);
    // Only now, with the whole answer valid, record it.
    for (const [of, share] of seeds) this.push(this.seedShares, of, share);
    for (const [of, share] of keys) this.push(this.keyShares, of, share);
    this.answered.add(site);
  }

  private push(map: Map<string, Uint8Array[]>, of: string, share: Uint8Array): void {
    let list = map.get(of);
    if (!list) map.set(of, (list = []));
    list.push(share);
  }

  /**
   * Reconstructs what the answers permit and removes every mask: Σ_{U3} (w·q) mod 2^32 (d + 1
   * words). Each reconstruction is checked (seed against its commitment, mask key against the
   * advertised public key), so tampered shares abort the round instead of corrupting the model.
   */
  async finish(): Promise<Uint32Array> {
    if (this.phase !== 'unmask') throw new SecAggProtocolError(`finish in phase ${this.phase}`);
    const session = this.o.params.session;
    const reconstruct = async (map: Map<string, Uint8Array[]>, of: string, what: string): Promise<Uint8Array> => {
      const shares = map.get(of) ?? [];
      if (shares.length < this.threshold) throw new SecAggAbort(`only ${shares.length} share(s) of ${of}'s ${what} came back; the threshold is ${this.threshold}`);
      return combine(shares);
    };
    // Every keystream to remove, applied in one pass over the vector on two threads.
    const removal: Mask[] = [];
    for (const j of this.droppedAfterSharing) {
      const raw = await reconstruct(this.keyShares, j, 'mask key');
      let sk: KeyObject;
      try {
        sk = x25519PrivateFromRaw(raw);
      } catch {
        throw new SecAggAbort(`reconstructed mask key of ${j} is invalid (tampered shares)`);
      }
      if (publicB64Of(sk) !== this.keys.get(j)!.sPk) throw new SecAggAbort(`reconstructed mask key of ${j} does not match its advertised key (tampered shares)`);
      // Remove j's pairwise masks from the survivors that masked with it (those it shared with).
      const masks: Mask[] = this.graph
        .get(j)!
        .filter((i) => this.contributed.has(i))
        .map((i) => ({ key: pairKey(sk, x25519PublicFromB64(this.keys.get(i)!.sPk), session, 'mask', i, j), sign: i < j ? -1 : 1 }));
      removal.push(...masks);
      if (this.o.observe) {
        applyMasks(this.sum, removal.splice(0));
        this.o.observe(`sum after removing ${j}'s pairwise masks`, this.sum);
      }
    }
    for (const i of this.survivors) {
      const seed = await reconstruct(this.seedShares, i, 'self-mask seed');
      if (seedCommitment(seed, session, i) !== this.keys.get(i)!.seedCommitment) throw new SecAggAbort(`reconstructed self-mask seed of ${i} does not match its commitment (tampered shares)`);
      removal.push({ key: selfMaskKey(seed, session, i), sign: -1 });
      // (with the test observer on, one mask at a time so every intermediate sum can be inspected)
      if (this.o.observe) {
        applyMasks(this.sum, removal.splice(0));
        this.o.observe(`sum after removing ${i}'s self mask`, this.sum);
      }
    }
    await applyMasksParallel(this.sum, removal);
    this.phase = 'done';
    return this.sum;
  }

  /** Sites whose input is in the sum. */
  contributors(): string[] {
    return [...this.contributed];
  }
}
