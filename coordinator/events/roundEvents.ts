/**
 * What the round engine reports as a round runs (`RoundObserver`), and its translation into
 * federation events (`RoundEvents`): round started and ended, each site's progress through the
 * phases (training, the SecAgg+ stages, evaluation) with the seconds and bytes each took, new
 * versions, stored metrics and privacy-ledger changes. The engine calls the observer at a few
 * points it already has (opening and closing a round's record, publishing, its phases' site
 * entries, the secure aggregation's hooks) and never depends on what the observer does: every
 * call is guarded (RoundEngine.notify).
 */
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { PhaseEntry } from '../rounds/roundPhase.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ExperimentRecord, RoundRecord, VersionRecord } from '../store/storeSchema.js';
import { safely, type FederationEvents, type PhaseStatus, type RoundEventStatus, type SitePhase } from './federationEvents.js';

/** The SecAgg+ stages a site goes through (the consistency round counts as part of unmasking). */
export type SecAggStage = 'key_exchange' | 'masked_input' | 'unmask';

/**
 * Why the coordinator (or the site, in its secure protocol) refused a site's update, besides the
 * site's own policy refusals (RefusalKind): `invalid_update` the update failed the
 * coordinator's checks (size, finite values, norm bound, masked-input format); `secagg_refused`
 * the site refused the SecAgg+ roster or parameters; `protocol_violation` a SecAgg+ message
 * broke the protocol (bad signature, wrong phase, replay).
 */
export type CoordinatorRefusal = 'invalid_update' | 'secagg_refused' | 'protocol_violation';

export interface StageDetail {
  reason?: string;
  refused?: CoordinatorRefusal;
}

export interface RoundObserver {
  roundStarted(record: RoundRecord): void;
  /** The round's record is closed and persisted (completed, failed or aborted). */
  roundEnded(exp: ExperimentRecord, record: RoundRecord): void;
  /** The new version is persisted as the experiment's current one. */
  versionPublished(exp: ExperimentRecord, record: RoundRecord, version: VersionRecord): void;
  /** A site's entry of a fit or evaluate phase: just sent (status `sent`), or settled. */
  phaseSite(kind: 'fit' | 'evaluate', experiment: string, round: number, entry: PhaseEntry): void;
  /** A site's SecAgg+ stage started or ended. */
  secaggStage(experiment: string, round: number, site: string, stage: SecAggStage, status: PhaseStatus, detail?: StageDetail): void;
  /** The coordinator is about to fail a site's update for `kind` (its phase entry fails next). */
  rejected(experiment: string, round: number, site: string, kind: CoordinatorRefusal): void;
}

export const NO_ROUND_OBSERVER: RoundObserver = {
  roundStarted: () => {},
  roundEnded: () => {},
  versionPublished: () => {},
  phaseSite: () => {},
  secaggStage: () => {},
  rejected: () => {},
};

const END_STATUS: Record<RoundRecord['status'], RoundEventStatus> = { running: 'started', completed: 'completed', failed: 'failed', aborted: 'stopped' };

interface OpenPhase {
  t0: number;
  bytes0: number;
  ended: boolean;
}

export class RoundEvents implements RoundObserver {
  /** Per round, per site and phase: when it started and the site's connection bytes then. */
  private readonly open = new Map<string, Map<string, OpenPhase>>();
  private readonly pendingRejections = new Map<string, CoordinatorRefusal>();

  constructor(
    private readonly bus: FederationEvents,
    private readonly gateway: Pick<EdgeGateway, 'bytes'>,
    private readonly store: CoordinatorStore,
  ) {}

  roundStarted(record: RoundRecord): void {
    this.open.set(roundKey(record.experiment, record.round), new Map());
    this.bus.emit({ type: 'round', experiment: record.experiment, round: record.round, status: 'started' });
  }

  roundEnded(exp: ExperimentRecord, record: RoundRecord): void {
    const key = roundKey(exp.id, record.round);
    // Every phase a site started ends in the feed: what was still open closed with the round.
    for (const [k, p] of this.open.get(key) ?? []) {
      if (p.ended) continue;
      const [site, phase] = splitSitePhase(k);
      this.end(exp.id, record.round, site, phase, 'dropped', { reason: `the round ${record.status === 'completed' ? 'closed' : END_STATUS[record.status]}` });
    }
    this.open.delete(key);
    for (const k of this.pendingRejections.keys()) if (k.startsWith(`${key}\n`)) this.pendingRejections.delete(k);
    if (record.fitMetrics || record.evalMetrics) this.bus.emit({ type: 'metrics', experiment: exp.id, round: record.round });
    // ε after this round is what the round's charge computed (privacyLayer.ts): no ledger re-read.
    if (exp.config.privacy && record.privacy?.charged) this.bus.emit({ type: 'privacy', experiment: exp.id, epsilon: record.privacy.epsilon ?? null });
    const status = END_STATUS[record.status];
    this.bus.emit({ type: 'round', experiment: exp.id, round: record.round, status, ...(status !== 'completed' && record.reason ? { reason: record.reason } : {}) });
  }

  versionPublished(exp: ExperimentRecord, record: RoundRecord, version: VersionRecord): void {
    this.bus.emit({ type: 'version', experiment: exp.id, version: version.id, round: record.round, parent: version.parent, paramsSha256: version.paramsSha256, encrypted: !!version.encrypted });
  }

  phaseSite(kind: 'fit' | 'evaluate', experiment: string, round: number, entry: PhaseEntry): void {
    const phase: SitePhase = kind === 'fit' ? 'training' : 'evaluation';
    if (entry.status === 'sent') return this.start(experiment, round, entry.site, phase);
    const pending = `${roundKey(experiment, round)}\n${entry.site}`;
    const refused = entry.status === 'failed' ? (entry.refused ?? this.pendingRejections.get(pending)) : undefined;
    this.pendingRejections.delete(pending);
    this.end(experiment, round, entry.site, phase, entry.status, { reason: entry.reason, refused });
  }

  secaggStage(experiment: string, round: number, site: string, stage: SecAggStage, status: PhaseStatus, detail: StageDetail = {}): void {
    // Reported after the synchronous work that caused it: a masked input ends `training`
    // (the engine's entry) before it ends `masked_input`, so a site's feed never goes backwards.
    queueMicrotask(() =>
      safely(() => {
        if (!this.open.has(roundKey(experiment, round))) return; // (the round already ended)
        if (status === 'started') this.start(experiment, round, site, stage);
        else this.end(experiment, round, site, stage, status, detail);
      }),
    );
  }

  rejected(experiment: string, round: number, site: string, kind: CoordinatorRefusal): void {
    this.pendingRejections.set(`${roundKey(experiment, round)}\n${site}`, kind);
  }

  private start(experiment: string, round: number, site: string, phase: SitePhase): void {
    const phases = this.open.get(roundKey(experiment, round));
    const b = this.gateway.bytes(site);
    phases?.set(`${site}\n${phase}`, { t0: performance.now(), bytes0: b.sent + b.received, ended: false });
    this.bus.emit({ type: 'phase', experiment, round, site, phase, status: 'started' });
  }

  private end(experiment: string, round: number, site: string, phase: SitePhase, status: Exclude<PhaseStatus, 'started'>, detail: { reason?: string; refused?: string }): void {
    const p = this.open.get(roundKey(experiment, round))?.get(`${site}\n${phase}`);
    let measured: { seconds?: number; bytes?: number } = {};
    if (p) {
      p.ended = true;
      const b = this.gateway.bytes(site);
      const bytes = b.sent + b.received - p.bytes0;
      // (a reconnected site's counters restarted: no byte count for the phase then)
      measured = { seconds: (performance.now() - p.t0) / 1000, ...(bytes >= 0 ? { bytes } : {}) };
    }
    this.bus.emit({
      type: 'phase',
      experiment,
      round,
      site,
      phase,
      status,
      ...(detail.reason ? { reason: detail.reason } : {}),
      ...(detail.refused ? { refused: detail.refused } : {}),
      ...measured,
    });
  }
}

function roundKey(experiment: string, round: number): string {
  return `${experiment}\n${round}`;
}

function splitSitePhase(k: string): [string, SitePhase] {
  const i = k.lastIndexOf('\n');
  return [k.slice(0, i), k.slice(i + 1) as SitePhase];
}
