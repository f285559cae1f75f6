/**
 * Who is ready: each site's last `data_status` (its labelled examples per split, as its policy
 * releases them, and whether it reaches its own minimum), shown with the site in GET /v1/sites.
 * Kept in memory: a site sends it again after every connection. A site is not trusted to be
 * polite: a status arriving sooner than `minIntervalMs` after the last one kept is dropped (and
 * logged once a minute), so a flood costs a schema check per message, nothing more.
 */
import type { DataStatus, MessageOf } from '../shared/protocol/messages.js';

export interface SiteReadinessView extends DataStatus {
  reportedAt: string;
}

type Log = { warn(o: object, msg: string): void };

export class SiteReadiness {
  private readonly last = new Map<string, { view: SiteReadinessView; at: number }>();
  private readonly dropped = new Map<string, { count: number; loggedAt: number }>();

  constructor(
    private readonly log: Log,
    private readonly minIntervalMs = 2000,
  ) {}

  /** Keeps the status; true when it differs from the one kept (an event is worth sending). */
  record(site: string, m: MessageOf<'data_status'>): boolean {
    const now = Date.now();
    const previous = this.last.get(site);
    if (previous && now - previous.at < this.minIntervalMs) {
      const d = this.dropped.get(site) ?? { count: 0, loggedAt: -Infinity };
      d.count++;
      if (now - d.loggedAt >= 60_000) {
        this.log.warn({ site, dropped: d.count, minIntervalMs: this.minIntervalMs }, 'site sends data_status too often; the extra ones are dropped');
        d.loggedAt = now;
      }
      this.dropped.set(site, d);
      return false;
    }
    const { examples, release, ready, minExamples } = m;
    const status: DataStatus = { examples, release, ready, minExamples };
    const same = previous !== undefined && JSON.stringify(status) === JSON.stringify({ examples: previous.view.examples, release: previous.view.release, ready: previous.view.ready, minExamples: previous.view.minExamples });
    this.last.set(site, { view: { ...status, reportedAt: new Date(now).toISOString() }, at: now });
    return !same;
  }

  of(site: string): SiteReadinessView | null {
    return this.last.get(site)?.view ?? null;
  }

  /** A site removed from the federation (revoked): what it said is no longer shown. */
  forget(site: string): void {
    this.last.delete(site);
    this.dropped.delete(site);
  }
}
