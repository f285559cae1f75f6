/**
 * One phase (fit or evaluate) of a round: an entry per site it was sent to — the same objects
 * are the round record's site entries — what came back, and when it is over: every site
 * answered, failed or dropped, or the engine closed it (deadline, stop, a failed secure protocol).
 */
import type { SiteEvaluation } from '../../shared/aggregation/strategy.js';
import type { RefusalKind, SiteMetrics } from '../../shared/protocol/messages.js';
import type { RoundRecord, RoundSiteRecord } from '../store/storeSchema.js';
import { allRefused, describeRefusals } from './refusalSummary.js';

/** A site's entry; `refused`: the site declined the round on purpose (fit_failed.refused). */
export type PhaseEntry = RoundSiteRecord & { sentAt: number; refused?: RefusalKind };

export interface PhaseHooks {
  warn(o: object, msg: string): void;
  /** Tells a site the phase is over for it (round_cancel). */
  cancel(site: string, reason: string): void;
  /** A fit-phase site is gone for the rest of the round (the secure aggregation stops waiting for it). */
  gone(site: string): void;
  /** A site's entry was sent or settled (the event feed). */
  observe?(entry: PhaseEntry): void;
}

export class RoundPhase {
  readonly sites = new Map<string, PhaseEntry>();
  readonly evaluations: SiteEvaluation[] = [];
  readonly fitMetrics: { numExamples: number; metrics: SiteMetrics }[] = [];
  /** Resolves when the phase is over. */
  readonly over: Promise<void>;
  private resolve!: () => void;

  constructor(
    readonly kind: 'fit' | 'evaluate',
    readonly experiment: string,
    readonly round: number,
    record: RoundRecord,
    sites: string[],
    private readonly hooks: PhaseHooks,
  ) {
    this.over = new Promise<void>((r) => (this.resolve = r));
    const now = Date.now();
    for (const site of sites) {
      const entry: PhaseEntry = { site, phase: kind, status: 'sent', sentAt: now };
      this.sites.set(site, entry);
      record.sites.push(entry);
    }
    for (const entry of this.sites.values()) hooks.observe?.(entry);
  }

  /** Ends the phase now (sites still working are dropped by the engine). */
  done(): void {
    this.resolve();
  }

  /** A site's outcome; with `cancel` it is told to stop working on the phase. */
  settle(site: string, status: RoundSiteRecord['status'], reason?: string, cancel = false): void {
    const e = this.sites.get(site);
    if (!e) return;
    e.status = status;
    e.seconds = (Date.now() - e.sentAt) / 1000;
    if (reason) e.reason = reason;
    if (status === 'dropped' || status === 'failed') {
      this.hooks.warn({ experiment: this.experiment, round: this.round, phase: this.kind, site, reason, ...(e.refused ? { refused: e.refused } : {}) }, e.refused ? 'site refused the round' : `site ${status}`);
      if (this.kind === 'fit') this.hooks.gone(site);
    }
    this.hooks.observe?.(e);
    if (cancel) this.hooks.cancel(site, reason ?? 'dropped');
    this.checkDone();
  }

  checkDone(): void {
    if ([...this.sites.values()].every((e) => e.status !== 'sent')) this.done();
  }

  delivered(): number {
    return [...this.sites.values()].filter((e) => e.status === 'done').length;
  }

  /**
   * Why the fit phase failed. When sites refused the round (their policy), the refusals grouped
   * by kind come first — they, not the symptom (too few keys or updates), are what to act on.
   */
  failure(message: string, minFitClients: number, secureAbort?: string): string {
    const entries = [...this.sites.values()];
    const refusals = describeRefusals(entries);
    if (!refusals) return message;
    if (secureAbort && !allRefused(entries)) return `${refusals}; secure aggregation aborted: ${secureAbort}`;
    return `${refusals}; the round needs at least ${minFitClients} update(s)`;
  }

  /** The sites that did not deliver, with why. */
  describeMissing(): string {
    const missing = [...this.sites.values()].filter((e) => e.status !== 'done');
    return missing.map((e) => `${e.site}: ${e.reason ?? e.status}`).join('; ') || 'none';
  }
}
