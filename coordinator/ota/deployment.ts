/**
 * Rollout control: which published version each site's inference service should run. A version
 * is published to every site (`current`) or first to a canary subset; a canary is then promoted
 * to all or rolled back, and `current` can be rolled back to the version before it. Every action
 * takes the next release number, which the signed manifest of the new target carries: edges
 * refuse a release older than the one they run, so an old signed manifest replayed later is
 * refused, while a rollback decided here is a new release of an old version. Changes are
 * persisted in the store and announced through `onChange` (the OTA publisher offers the new
 * target to the affected sites). A version a round publishes is deployed by its experiment's
 * `deploy` setting: "gated" (default) through the deployment gate (deploymentGate.ts; a held
 * version and the reason show in `held` and `lastGate`), "auto" always, "manual" never.
 */
import { FedmedError } from '../../shared/errors.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { DeploymentAction, DeploymentRecord, ExperimentRecord, GateDecision, SiteModelRecord } from '../store/storeSchema.js';
import { gateDecision } from './deploymentGate.js';

export class DeploymentError extends FedmedError {
  constructor(
    message: string,
    readonly status = 409,
  ) {
    super('DEPLOYMENT_INVALID', message);
  }
}

export interface DeploymentView extends DeploymentRecord {
  /** The latest deployment actions, oldest first (`logTotal` in all; older ones are kept in the store). */
  log: DeploymentAction[];
  logTotal: number;
  sites: { site: string; target: string | null; active: string | null; lastReport: Omit<SiteModelRecord, 'site' | 'active' | 'lastRefusal'> | null; lastRefusal: SiteModelRecord['lastRefusal'] | null }[];
}

/** Deployment actions a view lists (the latest). */
const VIEW_ACTIONS = 200;

/** Versions remembered per site as offered (the bases its delta fetches may name). */
const OFFERS_KEPT = 64;

/** A deployment change as the event feed reports it (events/federationEvents.ts). */
export type DeploymentChangeKind = 'publish' | 'canary' | 'promote' | 'rollback' | 'held' | 'gate' | 'report';

export class Deployment {
  /** Told after every change is persisted (the event feed); must not throw. */
  observe: (change: DeploymentChangeKind, detail: { version?: string | null; site?: string }) => void = () => {};

  constructor(
    private readonly store: CoordinatorStore,
    /** Called after a change with the sites whose target may have changed. */
    private readonly onChange: (sites: string[]) => void,
  ) {}

  private get record(): DeploymentRecord {
    return (this.store.data.deployment ??= { current: null, canary: null, previous: [] });
  }

  /** The next release number (call inside the store update that uses it). */
  private nextRelease(): number {
    const d = this.record;
    d.release = (d.release ?? 0) + 1;
    return d.release;
  }

  /** The version a site should run, or null when nothing is deployed. */
  targetFor(site: string): string | null {
    return this.releaseFor(site)?.version ?? null;
  }

  /** The version a site should run and the release at which it became its target. */
  releaseFor(site: string): { version: string; release: number } | null {
    const d = this.record;
    if (d.canary?.sites.includes(site)) return { version: d.canary.version, release: d.canary.release ?? 1 };
    return d.current ? { version: d.current, release: d.currentRelease ?? 1 } : null;
  }

  /**
   * A round published `versionId`: deploys it to every site as the experiment's `deploy` says
   * (CKKS versions are encrypted: no coordinator-signed OTA, each site decrypts its own copy).
   * Returns the gate's decision under "gated", else null.
   */
  async versionPublished(exp: ExperimentRecord, versionId: string): Promise<GateDecision | null> {
    const mode = exp.config.deploy ?? 'gated';
    if (mode === 'manual' || (exp.config.security ?? 'plain') === 'ckks') return null;
    if (mode === 'auto') {
      await this.publish(versionId);
      return null;
    }
    const d = this.record;
    const decision = await gateDecision(this.store, exp, versionId, d.current);
    const held = decision.decision === 'held';
    await this.store.update(
      () => {
        d.lastGate = decision;
        if (held) d.held = decision;
      },
      held ? { deploymentActions: [{ at: decision.at, action: 'held', version: versionId, reason: decision.reason }] } : {},
    );
    this.observe(decision.decision === 'held' ? 'held' : 'gate', { version: versionId });
    if (decision.decision === 'deployed') await this.publish(versionId);
    return decision;
  }

  /** Publishes a version to every site, or with `sites` to those sites only (a canary). */
  async publish(idOrPrefix: string, sites?: string[]): Promise<DeploymentView> {
    const version = await this.resolve(idOrPrefix);
    const d = this.record;
    const now = new Date().toISOString();
    if (sites && sites.length > 0) {
      const unknown = sites.filter((s) => !this.store.data.sites.some((r) => r.name === s));
      if (unknown.length > 0) throw new DeploymentError(`unknown site(s): ${unknown.join(', ')}`, 404);
      const before = d.canary?.sites ?? [];
      const canary = [...new Set(sites)];
      await this.store.update(() => void (d.canary = { version, sites: canary, release: this.nextRelease() }), { deploymentActions: [{ at: now, action: 'canary', version, sites: canary }] });
      this.onChange([...new Set([...before, ...sites])]);
      this.observe('canary', { version });
    } else {
      await this.store.update(() => {
        if (d.current && d.current !== version) d.previous.push(d.current);
        d.current = version;
        d.currentRelease = this.nextRelease();
        // Publishing to all supersedes a canary of the same version.
        if (d.canary?.version === version) d.canary = null;
        // A later (or the held) version deployed: nothing is held back any more.
        d.held = null;
      }, { deploymentActions: [{ at: now, action: 'publish', version }] });
      this.onChange(this.allSites());
      this.observe('publish', { version });
    }
    return this.view();
  }

  /** Makes the canary's version the version of every site. */
  async promote(): Promise<DeploymentView> {
    const d = this.record;
    if (!d.canary) throw new DeploymentError('there is no canary to promote');
    const version = d.canary.version;
    await this.store.update(() => {
      if (d.current && d.current !== version) d.previous.push(d.current);
      d.current = version;
      d.currentRelease = this.nextRelease();
      d.canary = null;
    }, { deploymentActions: [{ at: new Date().toISOString(), action: 'promote', version }] });
    this.onChange(this.allSites());
    this.observe('promote', { version });
    return this.view();
  }

  /**
   * Ends a canary (its sites return to `current`); without a canary, or with `to`, sets
   * `current` back to the previous version (or to `to`).
   */
  async rollback(toIdOrPrefix?: string): Promise<DeploymentView> {
    const d = this.record;
    const to = toIdOrPrefix ? await this.resolve(toIdOrPrefix) : undefined;
    if (d.canary && !to) {
      const sites = d.canary.sites;
      await this.store.update(
        () => {
          d.canary = null;
          // The canary's sites run a newer release than current's: current is released again.
          d.currentRelease = this.nextRelease();
        },
        { deploymentActions: [{ at: new Date().toISOString(), action: 'rollback', version: d.current, sites }] },
      );
      this.onChange(sites);
      this.observe('rollback', { version: d.current });
      return this.view();
    }
    const target = to ?? d.previous[d.previous.length - 1];
    if (!target) throw new DeploymentError('nothing to roll back to: no earlier version was deployed');
    await this.store.update(() => {
      if (!to) d.previous.pop();
      else if (d.current && d.current !== to) d.previous.push(d.current);
      d.current = target;
      d.currentRelease = this.nextRelease();
    }, { deploymentActions: [{ at: new Date().toISOString(), action: 'rollback', version: target }] });
    this.onChange(this.allSites());
    this.observe('rollback', { version: target });
    return this.view();
  }

  /** Remembers that `version` was offered to `site` (persisted; the last OFFERS_KEPT per site). */
  async noteOffered(site: string, version: string): Promise<void> {
    const list = (this.store.data.siteOffers ??= []);
    let r = list.find((x) => x.site === site);
    if (!r) list.push((r = { site, versions: [] }));
    if (r.versions[r.versions.length - 1] === version) return;
    r.versions = [...r.versions.filter((v) => v !== version), version].slice(-OFFERS_KEPT);
    await this.store.write();
  }

  /** Whether `version` was ever offered to `site` (of the last OFFERS_KEPT). */
  wasOffered(site: string, version: string): boolean {
    return this.store.data.siteOffers?.find((x) => x.site === site)?.versions.includes(version) ?? false;
  }

  /** Records what a site reported about a version (active, refused, rolled back, downloading). */
  async report(site: string, m: MessageOf<'model_status'>): Promise<void> {
    // Only about versions offered to the site, and only what changed: a hostile site's stream of
    // reports costs neither store writes nor events.
    if (!this.wasOffered(site, m.version)) return;
    const list = (this.store.data.siteModels ??= []);
    let r = list.find((x) => x.site === site);
    if (r && r.version === m.version && r.status === m.status && r.reason === m.reason) return;
    if (!r) list.push((r = { site, active: null, version: m.version, status: m.status, at: '' }));
    r.version = m.version;
    r.status = m.status;
    r.reason = m.reason;
    r.at = new Date().toISOString();
    if (m.status === 'active') r.active = m.version;
    if (m.status === 'refused' || m.status === 'rolled_back') r.lastRefusal = { version: m.version, status: m.status, reason: m.reason, at: r.at };
    await this.store.write();
    this.observe('report', { version: m.version, site });
  }

  async view(): Promise<DeploymentView> {
    const d = this.record;
    const reports = this.store.data.siteModels ?? [];
    const { actions, total } = await this.store.deploymentActions(VIEW_ACTIONS);
    return {
      ...d,
      log: actions,
      logTotal: total,
      sites: this.allSites().map((site) => {
        const r = reports.find((x) => x.site === site);
        return { site, target: this.targetFor(site), active: r?.active ?? null, lastReport: r ? { version: r.version, status: r.status, reason: r.reason, at: r.at } : null, lastRefusal: r?.lastRefusal ?? null };
      }),
    };
  }

  private allSites(): string[] {
    return this.store.data.sites.filter((s) => !s.revokedAt).map((s) => s.name);
  }

  /** A version id from the id or an unambiguous prefix of at least 8 hex digits. */
  async resolve(idOrPrefix: string): Promise<string> {
    if (!/^[0-9a-f]{8,64}$/.test(idOrPrefix)) throw new DeploymentError(`"${idOrPrefix}" is not a version id (64 hex digits, or a unique prefix of at least 8)`, 400);
    const matches = await this.store.versionsWithPrefix(idOrPrefix, 2);
    if (matches.length === 0) throw new DeploymentError(`unknown model version ${idOrPrefix}`, 404);
    if (matches.length > 1) throw new DeploymentError(`version prefix ${idOrPrefix} is ambiguous (more than one version)`, 400);
    if (matches[0].encrypted) throw new DeploymentError(`version ${matches[0].id} was aggregated under CKKS: the coordinator cannot read or sign it; each site decrypts it itself`, 409);
    return matches[0].id;
  }
}
