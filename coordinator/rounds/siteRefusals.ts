/**
 * What each site refused, kept on its site record so the API and `fedmed status` show it after
 * the round (and after a restart): the latest refusal per experiment, a bounded number of
 * experiments per site. A refusal is superseded when the site later delivers an update for the
 * same experiment; `approval_pending` refusals not superseded are the site's pending approvals.
 */
import type { RefusalKind } from '../../shared/protocol/messages.js';
import type { SiteRecord } from '../store/storeSchema.js';

export interface SiteRefusal {
  experiment: string;
  round: number;
  kind: RefusalKind;
  /** The site's reason (already made safe to display: see siteText.ts). */
  reason: string;
  at: string;
  /** The later round of this experiment the site delivered an update in. */
  supersededInRound?: number;
}

/** Experiments remembered per site (the oldest refusal goes first). */
export const MAX_REFUSALS_PER_SITE = 32;

type SiteWithRefusals = SiteRecord & { refusals?: SiteRefusal[] };

export function siteRefusals(site: SiteRecord): SiteRefusal[] {
  return (site as SiteWithRefusals).refusals ?? [];
}

/** Experiments the site refused with `approval_pending` and has not taken part in since. */
export function pendingApproval(site: SiteRecord): string[] {
  return siteRefusals(site)
    .filter((r) => r.kind === 'approval_pending' && r.supersededInRound === undefined)
    .map((r) => r.experiment);
}

/** Records a refusal (replacing the site's earlier one for this experiment). The caller persists the store. */
export function recordRefusal(site: SiteRecord, refusal: Omit<SiteRefusal, 'supersededInRound'>): void {
  const s = site as SiteWithRefusals;
  const kept = (s.refusals ?? []).filter((r) => r.experiment !== refusal.experiment);
  kept.push(refusal);
  s.refusals = kept.slice(-MAX_REFUSALS_PER_SITE);
}

/** The site delivered an update for `experiment` in `round`: an earlier refusal of it is superseded. */
export function recordDelivery(site: SiteRecord, experiment: string, round: number): void {
  const r = siteRefusals(site).find((x) => x.experiment === experiment);
  if (r && r.round < round && r.supersededInRound === undefined) r.supersededInRound = round;
}
