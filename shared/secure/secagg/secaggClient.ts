/**
 * The site's half of SecAgg+ for one round, independent of the transport: it turns the
 * coordinator's messages into its own and keeps the round's secrets (two X25519 key pairs and
 * the self-mask seed), which never leave the site except as Shamir shares sealed to neighbours.
 *
 *   keys()            → secagg_keys      (before training starts, so key exchange overlaps it)
 *   shares(roster)    → secagg_shares    (checks every neighbour's signed keys)
 *   receive(relay)    (opens the boxes meant for this site; those senders are its mask partners)
 *   mask(encoded)     → fit_res payload  (y = x + PRG(b) + Σ ±PRG(s_ij))
 *   unmask(request)   → secagg_unmask_res (seed shares of survivors, key shares of dropped sites —
 *                      never both for one site, and only once)
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { split } from 'shamir-secret-sharing';
import type { MessageOf, SecAggMember, SecAggSession } from '../../protocol/messages.js';
import { publicKeyFromB64 } from '../identity.js';
import { generateX25519, pairKey, seedCommitment, selfMaskKey, x25519PublicFromB64, type X25519KeyPair } from './keyAgreement.js';
import { applyMasks, type Mask } from './maskStream.js';
import { checkThreshold, type SecAggRoundParams } from './secaggParams.js';
import { SecAggProtocolError } from './secaggErrors.js';
import { signSecAgg, verifySecAgg } from './secaggSignature.js';
import { openShares, sealShares } from './shareBox.js';

type Phase = 'keys' | 'roster' | 'relay' | 'mask' | 'unmask' | 'done';

interface Neighbour {
  cPk: KeyObject;
  sPk: KeyObject;
}

export class SecAggClient {
  private readonly c: X25519KeyPair = generateX25519();
  private readonly s: X25519KeyPair = generateX25519();
  private readonly seed = randomBytes(32);
  private phase: Phase = 'keys';
  private readonly neighbours = new Map<string, Neighbour>();
  /** Shares this site holds, per owner (itself included): of the owner's seed and mask key. */
  private readonly held = new Map<string, { seedShare: Uint8Array; keyShare: Uint8Array }>();
  /** Neighbours whose shares arrived: the ones this site masks with. */
  private partners: string[] = [];
  private threshold = 0;
  readonly session: SecAggSession;

  constructor(
    readonly site: string,
    ctx: { experiment: string; round: number },
    readonly params: SecAggRoundParams,
    private readonly identity: KeyObject,
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

  /** Phase 1: checks the roster (this site's own keys, every neighbour's signature) and shares its secrets. */
  async shares(roster: MessageOf<'secagg_roster'>): Promise<MessageOf<'secagg_shares'>> {
    this.expect('roster', 'roster');
    this.checkSession(roster, 'roster');
    const seen = new Set<string>();
    let self: SecAggMember | undefined;
    for (const m of roster.members) {
      if (seen.has(m.site)) throw new SecAggProtocolError(`roster lists ${m.site} twice`);
      seen.add(m.site);
      const keysMessage = { type: 'secagg_keys', ...this.session, cPk: m.cPk, sPk: m.sPk, seedCommitment: m.seedCommitment, signature: m.signature };
      if (!verifySecAgg(publicKeyFromB64(m.identityKey), m.site, keysMessage)) throw new SecAggProtocolError(`roster entry of ${m.site} is not signed by its identity key`);
      if (m.site === this.site) self = m;
      else this.neighbours.set(m.site, { cPk: x25519PublicFromB64(m.cPk, `${m.site}'s cPk`), sPk: x25519PublicFromB64(m.sPk, `${m.site}'s sPk`) });
    }
    if (!self || self.cPk !== this.c.publicB64 || self.sPk !== this.s.publicB64) throw new SecAggProtocolError('roster does not carry this site\'s own keys unchanged');
    const holders = roster.members.length;
    checkThreshold(roster.threshold, holders);
    this.threshold = roster.threshold;
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
    this.partners = partners;
    this.phase = 'mask';
  }

  /** Phase 2: masks the encoded update in place (it is consumed) and returns it as the payload. */
  mask(encoded: Uint32Array): Uint32Array {
    this.expect('mask', 'masking');
    const masks: Mask[] = [{ key: selfMaskKey(this.seed, this.session.session, this.site), sign: 1 }];
    for (const j of this.partners) masks.push({ key: pairKey(this.s.privateKey, this.neighbours.get(j)!.sPk, this.session.session, 'mask', this.site, j), sign: this.site < j ? 1 : -1 });
    applyMasks(encoded, masks);
    this.phase = 'unmask';
    return encoded;
  }

  /** Signs the fit_res header together with the masked payload. */
  signResult(message: MessageOf<'fit_res'>, payload: Uint8Array): string {
    return signSecAgg(this.identity, this.site, message, payload);
  }

  /** Phase 3: the shares the coordinator may have — checked so that no site's two secrets both leave. */
  unmask(req: MessageOf<'secagg_unmask'>): MessageOf<'secagg_unmask_res'> {
    this.expect('unmask', 'unmask request');
    this.checkSession(req, 'unmask request');
    const survivors = new Set(req.survivors);
    for (const d of req.dropped) if (survivors.has(d)) throw new SecAggProtocolError(`unmask request names ${d} as both survivor and dropped; refusing to reveal both its secrets`);
    if (!survivors.has(this.site)) throw new SecAggProtocolError('unmask request says this site dropped, but it sent its masked input');
    for (const s of [...req.survivors, ...req.dropped]) if (!this.held.has(s)) throw new SecAggProtocolError(`unmask request names ${s}, whose shares this site does not hold`);
    for (const d of req.dropped) if (!this.partners.includes(d)) throw new SecAggProtocolError(`unmask request names ${d} as dropped, but it is not one of this site's mask partners`);
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
