/**
 * The consistency round of Bonawitz et al. (CCS 2017, the variant secure against an actively
 * malicious server): after the masked inputs are in, the coordinator tells each survivor the
 * survivor set U3; each signs it; before revealing any share, a site checks that at least t
 * members of its own group (itself included) signed the very set it signed. A coordinator that
 * tells some sites "X survived" (to get X's seed shares) and others "X dropped" (to get X's mask
 * key shares) cannot gather t signatures on both stories while fewer than a third of a group
 * colludes with it (t > 2h/3), so no site's two secrets both leave.
 */
import type { KeyObject } from 'node:crypto';
import type { SecAggSession } from '../../protocol/messages.js';
import { signSecAgg, verifySecAgg } from './secaggSignature.js';

function survivorsStatement(session: SecAggSession, survivors: readonly string[]): object {
  return { type: 'secagg_survivors', experiment: session.experiment, round: session.round, session: session.session, survivors: [...survivors].sort() };
}

export function signSurvivors(identity: KeyObject, site: string, session: SecAggSession, survivors: readonly string[]): string {
  return signSecAgg(identity, site, survivorsStatement(session, survivors));
}

export function verifySurvivors(key: KeyObject, site: string, session: SecAggSession, survivors: readonly string[], signature: string): boolean {
  return verifySecAgg(key, site, { ...survivorsStatement(session, survivors), signature });
}
