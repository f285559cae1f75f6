/**
 * The site's half of SecAgg+ for one round, independent of the transport: it turns the
 * coordinator's messages into its own and keeps the round's secrets (two X25519 key pairs and
 * the self-mask seed), which never leave the site except as Shamir shares sealed to neighbours.
 * It assumes the coordinator may be actively malicious (see rosterCheck.ts, consistencyRound.ts).
 *
 *   keys()             → secagg_keys      (before training starts, so key exchange overlaps it)
 *   shares(roster)     → secagg_shares    (after checking the roster: certified members, the
 *                                          public graph, group size and threshold)
 *   receive(relay)     (opens the boxes meant for this site; those senders are its mask partners)
 *   mask(encoded)      → fit_res payload  (y = x + PRG(b) + Σ ±PRG(s_ij))
 *   consistency(U3)    → secagg_consistency_sig (its signature on the survivor set it was told)
 *   unmask(request)    → secagg_unmask_res (only if t of its group signed that same set, and the
 *                       request matches it: seed shares of survivors, key shares of dropped
 *                       partners — never both for one site, and only once)
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { split } from 'shamir-secret-sharing';
import type { MessageOf, SecAggSession } from '../../protocol/messages.js';
import type { FederationTrust } from '../trust/federationTrust.js';
import { signSurvivors, verifySurvivors } from './consistencyRound.js';
import { generateX25519, pairKey, seedCommitment, selfMaskKey, type X25519KeyPair } from './keyAgreement.js';
import { applyMasks, type Mask } from './maskStream.js';
import { checkRoster, type CheckedNeighbour } from './rosterCheck.js';
import { DEFAULT_SITE_SECAGG_RULES, type SecAggRoundParams, type SiteSecAggRules } from './secaggParams.js';
import { SecAggProtocolError } from './secaggErrors.js';
import { signSecAgg } from './secaggSignature.js';
import { openShares, sealShares } from './shareBox.js';

type Phase = 'keys' | 'roster' | 'relay' | 'mask' | 'consistency' | 'unmask' | 'done';

export class SecAggClient {
  private readonly c: X25519KeyPair = generateX25519();
  private readonly s: X25519KeyPair = generateX25519();
  private readonly seed = randomBytes(32);
  private phase: Phase = 'keys';
  private neighbours = new Map<string, CheckedNeighbour>();
  /** Shares this site holds, per owner (itself included): of the owner's seed and mask key. */
  private readonly held = new Map<string, { seedShare: Uint8Array; keyShare: Uint8Array }>();
  /** Neighbours whose shares arrived: the ones this site masks with. */
  private partners: string[] = [];
  private threshold = 0;
  private participants = new Set<string>();
  /** The survivor set this site signed in the consistency round. */
  private survivors: string[] | null = null;
  readonly session: SecAggSession;

  constructor(
    readonly site: string,
    ctx: { experiment: string; round: number },
    readonly params: SecAggRoundParams,
    private readonly identity: KeyObject,
    /** The admin key this site pinned: roster members must hold its certificates. */
    private readonly trust: FederationTrust,
    private readonly rules: SiteSecAggRules = DEFAULT_SITE_SECAGG_RULES,
  ) {
    this.session = { experiment: ctx.experiment, round: ctx.round, session: params.session };
  }

  private expect(phase: Phase, what: string): void {
    if (this.phase !== phase) throw new SecAggProtocolError(`${what} arrived in phase "${this.phase}" (expected in "${phase}")`);
  }

  private checkSession(m: SecAggSession, what: string): void {
    if (m.experiment !== this.session.experiment || m.round !== this.session.round || m.session !== this.session.session) {
      throw new SecAggProtocolError(`${what} is for ${m.experiment} round ${m.round} session ${m.session}, not this round`);
    }
  }

  /** Phase 0: this site's signed public keys and seed commitment. */
  keys(): MessageOf<'secagg_keys'> {
    this.expect('keys', 'key advertisement');
    const m = { type: 'secagg_keys' as const, ...this.session, cPk: this.c.publicB64, sPk: this.s.publicB64, seedCommitment: seedCommitment(this.seed, this.session.session, this.site), signature: '' };
    m.signature = signSecAgg(this.identity, this.site, m);
    this.phase = 'roster';
    return m;
  }

  /** Phase 1: checks the roster (see rosterCheck.ts) and shares its secrets with the neighbours it names. */
  async shares(roster: MessageOf<'secagg_roster'>): Promise<MessageOf<'secagg_shares'>> {
    this.expect('roster', 'roster');
    this.checkSession(roster, 'roster');
    const checked = checkRoster(roster, { site: this.site, cPk: this.c.publicB64, sPk: this.s.publicB64 }, this.trust, this.rules);
    this.neighbours = checked.neighbours;
    this.participants = checked.participants;
    const holders = checked.holders;
    this.threshold = checked.threshold;
    const [seedShares, keyShares] = await Promise.all([split(new Uint8Array(this.seed), holders, this.threshold), split(new Uint8Array(this.s.privateRaw), holders, this.threshold)]);
    this.held.set(this.site, { seedShare: seedShares[0], keyShare: keyShares[0] });
    const boxes: { to: string; box: string }[] = [];
    let i = 1;
    for (const [to, nb] of this.neighbours) {
      const key = pairKey(this.c.privateKey, nb.cPk, this.session.session, 'share', this.site, to);
      boxes.push({ to, box: sealShares(key, this.session.session, this.site, to, seedShares[i], keyShares[i]) });
      i++;
    }
    const m = { type: 'secagg_shares' as const, ...this.session, boxes, signature: '' };
    m.signature = signSecAgg(this.identity, this.site, m);
    this.phase = 'relay';
    return m;
  }

  /** Opens the share boxes neighbours sent this site; their senders become its mask partners. */
  receive(relay: MessageOf<'secagg_relay'>): void {
    this.expect('relay', 'share relay');
    this.checkSession(relay, 'share relay');
    const partners: string[] = [];
    for (const { from, box } of relay.boxes) {
      const nb = this.neighbours.get(from);
      if (!nb) throw new SecAggProtocolError(`relayed shares from ${from}, which is not a neighbour`, from);
      if (this.held.has(from)) throw new SecAggProtocolError(`shares from ${from} relayed twice`, from);
      const key = pairKey(this.c.privateKey, nb.cPk, this.session.session, 'share', from, this.site);
      this.held.set(from, openShares(key, this.session.session, from, this.site, box));
      partners.push(from);
    }
    // Too few partners and the masked input would carry too few pairwise masks: a coordinator that
    // withholds boxes (down to none: only the self mask, which the survivors' seed shares remove)
    // could unmask this site's update alone. With t − 1 partners, any sum it can unmask holds t
    // members of this group (the consistency round makes them sign it).
    if (partners.length + 1 < this.threshold) {
      throw new SecAggProtocolError(`only ${partners.length} neighbour(s) relayed shares to this site; its masked input needs at least ${this.threshold - 1} pairwise masks (threshold ${this.threshold}): refusing to send it`);
    }
    this.partners = partners;
    this.phase = 'mask';
  }

  /** Phase 2: masks the encoded update in place (it is consumed) and returns it as the payload. */
  mask(encoded: Uint32Array): Uint32Array {
    this.expect('mask', 'masking');
    const masks: Mask[] = [{ key: selfMaskKey(this.seed, this.session.session, this.site), sign: 1 }];
    for (const j of this.partners) masks.push({ key: pairKey(this.s.privateKey, this.neighbours.get(j)!.sPk, this.session.session, 'mask', this.site, j), sign: this.site < j ? 1 : -1 });
    applyMasks(encoded, masks);
    this.phase = 'consistency';
    return encoded;
  }

  /** Consistency round: signs the survivor set it is told (once; it will hold the coordinator to it). */
  consistency(m: MessageOf<'secagg_consistency'>): MessageOf<'secagg_consistency_sig'> {
    this.expect('consistency', 'survivor set');
    this.checkSession(m, 'survivor set');
    if (!m.survivors.includes(this.site)) throw new SecAggProtocolError('the survivor set omits this site, which sent its masked input');
    const outsiders = m.survivors.filter((s) => !this.participants.has(s));
    if (outsiders.length > 0) throw new SecAggProtocolError(`the survivor set names sites that were never participants: ${outsiders.slice(0, 5).join(', ')}`);
    this.survivors = [...m.survivors].sort();
    this.phase = 'unmask';
    return { type: 'secagg_consistency_sig', ...this.session, signature: signSurvivors(this.identity, this.site, this.session, this.survivors) };
  }

  /** The threshold this site checked in the roster (0 before it). */
  get groupThreshold(): number {
    return this.threshold;
  }

  /** Participants of the round (U1) as the roster listed them. */
  get participantCount(): number {
    return this.participants.size;
  }

  /** Signs the fit_res header together with the masked payload. */
  signResult(message: MessageOf<'fit_res'>, payload: Uint8Array): string {
    return signSecAgg(this.identity, this.site, message, payload);
  }

  /**
   * Phase 3: the shares the coordinator may have — only if at least t members of this site's
   * group signed the survivor set this site signed, and the request is exactly what that set
   * implies for this group; so no site's two secrets both leave.
   */
  unmask(req: MessageOf<'secagg_unmask'>): MessageOf<'secagg_unmask_res'> {
    this.expect('unmask', 'unmask request');
    this.checkSession(req, 'unmask request');
    const signed = new Set(this.survivors!);
    // t matching signatures from this group (itself included) on the set this site signed.
    const valid = new Set<string>([this.site]);
    for (const { site, signature } of req.signatures) {
      const nb = this.neighbours.get(site);
      if (!nb || !signed.has(site) || valid.has(site)) continue;
      if (verifySurvivors(nb.identity, site, this.session, this.survivors!, signature)) valid.add(site);
    }
    if (valid.size < this.threshold) {
      throw new SecAggProtocolError(`only ${valid.size} member(s) of this site's group signed the survivor set it was told (threshold ${this.threshold}): the coordinator told different sites different survivor sets, or too many dropped; refusing to reveal any share`);
    }
    const survivors = new Set(req.survivors);
    for (const d of req.dropped) if (survivors.has(d)) throw new SecAggProtocolError(`unmask request names ${d} as both survivor and dropped; refusing to reveal both its secrets`);
    // Exactly what the signed set implies: survivors = this site and its partners in the set, dropped = partners not in it.
    const group = [this.site, ...this.partners];
    const wantSurvivors = group.filter((s) => signed.has(s)).sort();
    const wantDropped = this.partners.filter((s) => !signed.has(s)).sort();
    if ([...req.survivors].sort().join() !== wantSurvivors.join() || [...req.dropped].sort().join() !== wantDropped.join()) {
      throw new SecAggProtocolError(`unmask request (survivors [${req.survivors.join(', ')}], dropped [${req.dropped.join(', ')}]) contradicts the signed survivor set (for this group: survivors [${wantSurvivors.join(', ')}], dropped [${wantDropped.join(', ')}])`);
    }
    if (survivors.size < this.threshold) throw new SecAggProtocolError(`only ${survivors.size} survivors in this site's group, below the threshold ${this.threshold}`);
    const b64 = (u: Uint8Array) => Buffer.from(u).toString('base64url');
    const m = {
      type: 'secagg_unmask_res' as const,
      ...this.session,
      seedShares: req.survivors.map((of) => ({ of, share: b64(this.held.get(of)!.seedShare) })),
      keyShares: req.dropped.map((of) => ({ of, share: b64(this.held.get(of)!.keyShare) })),
      signature: '',
    };
    m.signature = signSecAgg(this.identity, this.site, m);
    this.phase = 'done';
    return m;
  }
}
