/**
 * Names why a round's fit phase came up short when sites refused it on purpose (their policy:
 * privacy budget, pending approval, ...), instead of the symptom the refusals caused ("only 0
 * site(s) advertised keys"). Refusals are grouped by kind; sites that failed or dropped for
 * other reasons, and those that delivered, are counted after them.
 */
import { REFUSAL_KINDS, type RefusalKind } from '../../shared/protocol/messages.js';
import type { RoundSiteRecord } from '../store/storeSchema.js';

export const REFUSAL_LABELS: Record<RefusalKind, string> = {
  privacy_budget: 'privacy budget exhausted',
  approval_pending: 'approval pending',
  experiment_rejected: 'experiment rejected',
  policy: 'refused by site policy',
};

/** A sampled site's fit-phase entry, with the kind of its refusal if it refused. */
export type FitEntry = Pick<RoundSiteRecord, 'site' | 'status' | 'reason'> & { refused?: RefusalKind };

const byName = (a: FitEntry, b: FitEntry) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0);

/**
 * E.g. "2 of 3 sampled sites refused: privacy budget exhausted (a), approval pending (b); 1
 * failed: c (out of memory)"; null when no site refused (the caller keeps its own message).
 */
export function describeRefusals(entries: FitEntry[]): string | null {
  const refused = entries.filter((e) => e.refused !== undefined).sort(byName);
  if (refused.length === 0) return null;
  const groups = REFUSAL_KINDS.map((kind) => ({ kind, sites: refused.filter((e) => e.refused === kind).map((e) => e.site) })).filter((g) => g.sites.length > 0);
  const parts = [`${refused.length} of ${entries.length} sampled site${entries.length === 1 ? '' : 's'} refused: ${groups.map((g) => `${REFUSAL_LABELS[g.kind]} (${g.sites.join(', ')})`).join(', ')}`];
  for (const status of ['failed', 'dropped'] as const) {
    const others = entries.filter((e) => e.refused === undefined && e.status === status).sort(byName);
    if (others.length > 0) parts.push(`${others.length} ${status}: ${others.map((e) => `${e.site} (${e.reason ?? status})`).join(', ')}`);
  }
  const delivered = entries.filter((e) => e.status === 'done').length;
  if (delivered > 0) parts.push(`${delivered} returned an update`);
  return parts.join('; ');
}

/** Whether every sampled site refused (then the refusals are the whole story). */
export function allRefused(entries: FitEntry[]): boolean {
  return entries.length > 0 && entries.every((e) => e.refused !== undefined);
}
