/**
 * The site's checks of a SecAgg+ roster, which the coordinator composed and may have composed
 * to attack it. Before sharing anything the site requires that:
 *   - every member comes with a site certificate the federation admin signed (valid now, not
 *     revoked, for that member's name), and its keys are signed by the certified identity key —
 *     so no member is a Sybil the coordinator made up;
 *   - its neighbours are exactly those the public graph gives for the listed participants, the
 *     declared degree and the session (the coordinator cannot hand-pick a victim's group);
 *   - the group is not smaller and the threshold not lower than its rules allow (by default at
 *     least 3 holders and t ≥ ⌊2h/3⌋ + 1, the bound for an active coordinator);
 *   - its own entry carries its own keys unchanged.
 * Any failure is a SecAggProtocolError naming it; the site then sends nothing of its secrets.
 */
import type { KeyObject } from 'node:crypto';
import type { MessageOf } from '../../protocol/messages.js';
import { publicKeyFromB64 } from '../identity.js';
import type { FederationTrust } from '../trust/federationTrust.js';
import { TrustError } from '../trust/trustError.js';
import { x25519PublicFromB64 } from './keyAgreement.js';
import { neighbourGraph } from './neighbourGraph.js';
import type { SiteSecAggRules } from './secaggParams.js';
import { SecAggProtocolError } from './secaggErrors.js';
import { verifySecAgg } from './secaggSignature.js';

export interface CheckedNeighbour {
  cPk: KeyObject;
  sPk: KeyObject;
  /** The certified identity key (checks its consistency-round signature). */
  identity: KeyObject;
}

export interface CheckedRoster {
  neighbours: Map<string, CheckedNeighbour>;
  holders: number;
  threshold: number;
  participants: Set<string>;
}

export function checkRoster(roster: MessageOf<'secagg_roster'>, self: { site: string; cPk: string; sPk: string }, trust: FederationTrust, rules: SiteSecAggRules): CheckedRoster {
  const session = { experiment: roster.experiment, round: roster.round, session: roster.session };
  const participants = new Set(roster.participants);
  if (!participants.has(self.site)) throw new SecAggProtocolError('roster does not list this site among the participants');
  // The graph: recomputed here from public inputs, never taken from the coordinator.
  const expected = neighbourGraph([...roster.participants].sort(), roster.neighbours, roster.session).get(self.site) ?? [];
  const listed = roster.members.map((m) => m.site).filter((s) => s !== self.site);
  const extra = listed.filter((s) => !expected.includes(s));
  const missing = expected.filter((s) => !listed.includes(s));
  if (extra.length > 0 || missing.length > 0 || listed.length !== expected.length) {
    throw new SecAggProtocolError(`roster neighbours [${listed.join(', ')}] are not this site's neighbours in the public graph of ${participants.size} participants with degree ${roster.neighbours} ([${expected.join(', ')}])`);
  }
  const holders = roster.members.length;
  if (holders < rules.minHolders) throw new SecAggProtocolError(`a share group of ${holders} holder(s) is below this site's minimum of ${rules.minHolders}`);
  const minT = rules.minThreshold(holders);
  if (!Number.isInteger(roster.threshold) || roster.threshold < minT || roster.threshold > holders) {
    throw new SecAggProtocolError(`threshold ${roster.threshold} for ${holders} holders is outside what this site accepts (${minT}–${holders}: an active coordinator with fewer than ${holders - minT + 1} colluders could otherwise reconstruct both secrets of a site)`);
  }
  const neighbours = new Map<string, CheckedNeighbour>();
  const identities = new Set<string>();
  let selfSeen = false;
  for (const m of roster.members) {
    let identityKey: string;
    try {
      identityKey = trust.site(m.certificate, { site: m.site }).identityKey;
    } catch (err) {
      if (err instanceof TrustError) throw new SecAggProtocolError(`roster member ${m.site} refused: ${err.message}`);
      throw err;
    }
    if (identities.has(identityKey)) throw new SecAggProtocolError(`roster lists the identity key of ${m.site} twice`);
    identities.add(identityKey);
    const identity = publicKeyFromB64(identityKey);
    const keysMessage = { type: 'secagg_keys', ...session, cPk: m.cPk, sPk: m.sPk, seedCommitment: m.seedCommitment, signature: m.signature };
    if (!verifySecAgg(identity, m.site, keysMessage)) throw new SecAggProtocolError(`roster entry of ${m.site} is not signed by its certified identity key`);
    if (m.site === self.site) {
      if (m.cPk !== self.cPk || m.sPk !== self.sPk) throw new SecAggProtocolError("roster does not carry this site's own keys unchanged");
      selfSeen = true;
    } else neighbours.set(m.site, { cPk: x25519PublicFromB64(m.cPk, `${m.site}'s cPk`), sPk: x25519PublicFromB64(m.sPk, `${m.site}'s sPk`), identity });
  }
  if (!selfSeen) throw new SecAggProtocolError("roster does not carry this site's own keys");
  return { neighbours, holders, threshold: roster.threshold, participants };
}
