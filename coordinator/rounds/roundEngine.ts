/**
 * Runs an experiment's rounds, phase by phase: sample the sites, configure the round, collect
 * updates until all answered or the deadline passed, aggregate, persist the new version, then
 * evaluate it on the sites' local validation data. What protects the updates is not decided
 * here: the round runs through a pipeline of strategy (which sites, what to train, how to
 * combine) → privacy layer (privacyLayer.ts) → secure aggregator (plain, SecAgg+ or CKKS behind
 * secureAggregator.ts), and the engine drives the same phases whichever they are. A site that
 * disconnects is dropped from the round (and re-admitted if it reconnects and delivers before
 * the round closes); the round completes with at least `minFitClients` updates, otherwise it
 * fails with the reason — naming the sites that refused it — and publishes nothing.
 */
import { weightedMetrics, type AggregatedFit } from '../../shared/aggregation/strategy.js';
import { FedmedError } from '../../shared/errors.js';
import { float32Bytes, specHash } from '../../shared/model/modelHash.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { encodeMessage } from '../../shared/protocol/messageChannel.js';
import type { Message } from '../../shared/protocol/messages.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import { markReleasable, releaseBuffer } from '../../shared/protocol/releasableBuffers.js';
import { exampleWeight } from '../experimentConfig.js';
import { NO_ROUND_OBSERVER, type RoundObserver } from '../events/roundEvents.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ExperimentRecord, RoundRecord } from '../store/storeSchema.js';
import type { EncryptedAggregate } from './ckksAggregation.js';
import { CkksProtection } from './ckksProtection.js';
import { ExperimentStrategies, strategyFor } from './experimentStrategies.js';
import { AggregationAbort, type FitAggregationHooks } from './fitAggregation.js';
import { nextVersion, type NextVersion } from './modelUpdate.js';
import { PlainProtection } from './plainProtection.js';
import { PrivacyLayer } from './privacyLayer.js';
import { RoundError } from './roundError.js';
import { RoundPhase, type PhaseEntry } from './roundPhase.js';
import { SecAggProtection } from './secAggProtection.js';
import type { RoundAggregation, SecureAggregator } from './secureAggregator.js';
import { recordDelivery, recordRefusal } from './siteRefusals.js';
import { siteText } from './siteText.js';

export { RoundError, strategyFor };

type Run = { stop: boolean; reason: string; shutdown?: boolean };

/** A run is resumed after at most this many restarts during it. */
const MAX_RESUMES = 3;
type Log = { info(o: object, msg: string): void; warn(o: object, msg: string): void; error(o: object, msg: string): void };

export class RoundEngine {
  private readonly plain = new PlainProtection();
  /** What protects each experiment's updates (its `security`), one instance per kind. */
  private readonly protections: Record<SecureAggregator['mode'], SecureAggregator>;
  private readonly runs = new Map<string, Run>();
  private phase: RoundPhase | null = null;
  /** Rounds recently finished per experiment, to recognise late (not malicious) results. */
  private readonly recentlyEnded = new Map<string, number>();
  /** The runs' background loops (settled() waits for them). */
  private readonly running = new Set<Promise<void>>();
  private readonly params = new Map<string, Float32Array>();
  private readonly strategies: ExperimentStrategies;
  /** Called when a round has published (and evaluated) a new version. */
  onVersionPublished: (experiment: ExperimentRecord, versionId: string) => void = () => {};
  /** Told how rounds progress (the event feed, events/roundEvents.ts); never affects them. */
  observer: RoundObserver = NO_ROUND_OBSERVER;
  /** The open round's aggregation and privacy layer; outlive the fit phase (SecAgg+ unmasking). */
  private aggregation: { experiment: string; round: number; impl: RoundAggregation; privacy: PrivacyLayer } | null = null;
  /** Test instrumentation: every encrypted update the coordinator receives in a CKKS round. */
  ckksObserver?: (site: string, payload: Uint8Array) => void;

  constructor(
    private readonly store: CoordinatorStore,
    private readonly gateway: EdgeGateway,
    private readonly federation: CoordinatorFederation,
    private readonly log: Log,
  ) {
    this.strategies = new ExperimentStrategies(store, log);
    this.protections = { plain: this.plain, secagg: new SecAggProtection(), ckks: new CkksProtection(store, log, () => this.ckksObserver) };
    gateway.events = {
      onMessage: (site, m, p) => this.onMessage(site, m, p),
      onDisconnect: (site, reason) => this.onDisconnect(site, reason),
      onConnect: (site) => this.touch(site),
    };
  }

  /** After a restart: rounds left running are marked aborted (nothing was published for them). */
  async recover(): Promise<RoundRecord[]> {
    // Each experiment's last round counts as just ended: an edge that reconnects with its result
    // for it (the round it was working on when the coordinator went down) is told nothing and
    // keeps its connection — an honest site after a crash, not a protocol violation.
    for (const e of this.store.data.experiments) {
      const last = await this.store.lastRoundNumber(e.id);
      if (last > 0) this.recentlyEnded.set(e.id, last);
    }
    const open = await this.store.runningRounds();
    if (open.length === 0) return [];
    for (const r of open) {
      r.status = 'aborted';
      // A round killed after publishing keeps its version (the publish was one transaction).
      r.reason = r.versionId
        ? `coordinator restarted during the round, after it published version ${r.versionId} (its evaluation was cut short)`
        : 'coordinator restarted during the round; nothing was published for it';
      r.endedAt = new Date().toISOString();
    }
    await this.store.writeHistory({ rounds: open });
    for (const r of open) this.log.warn({ experiment: r.experiment, round: r.round }, 'round aborted: coordinator restarted during it');
    return open;
  }

  /** How plain rounds add updates: 'wasm-simd', or 'js' where WebAssembly SIMD is unavailable (logged at start). */
  get summation(): 'wasm-simd' | 'js' {
    return this.plain.summation;
  }

  isRunning(experiment: string): boolean {
    return this.runs.has(experiment);
  }

  /** Starts `count` rounds in the background; rejects if rounds of this experiment are running. */
  async start(experimentId: string, count: number): Promise<{ experiment: string; firstRound: number; rounds: number }> {
    const exp = this.experiment(experimentId);
    this.claimRun(exp);
    let firstRound: number;
    try {
      firstRound = await this.nextRound(exp.id);
      await this.store.update(() => void (exp.run = { rounds: count, firstRound, requestedAt: new Date().toISOString(), resumes: 0 }));
    } catch (err) {
      this.runs.delete(exp.id);
      throw err;
    }
    this.runInBackground(exp, count, null);
    return { experiment: exp.id, firstRound, rounds: count };
  }

  /**
   * After a restart (or a standby's takeover): an experiment whose run a crash cut short goes on
   * — the aborted round is redone, then the rounds left — once the sites of its last round are
   * back, or, at the experiment's deadline, once at least minFitClients are (sampling the first
   * few to reconnect would make which sites take part a race of reconnection backoffs). A run resumed MAX_RESUMES times is not resumed again
   * (something in it keeps stopping the coordinator); that is logged and the run ends. Returns
   * the experiments whose run resumes (already running when this returns).
   */
  async resumeInterruptedRuns(readySites: () => readonly string[]): Promise<string[]> {
    const resumed: string[] = [];
    for (const exp of this.store.data.experiments) {
      const run = exp.run;
      if (!run || this.runs.size > 0) continue;
      // The run's rounds (by index: the latest ones, from its first).
      const last = await this.store.lastRoundNumber(exp.id);
      const ours = (await this.store.rounds(exp.id, { limit: Math.max(1, last - run.firstRound + 1) })).filter((r) => r.round >= run.firstRound);
      const completed = ours.filter((r) => r.status === 'completed').length;
      // A failed round ended the run (as it would have without the crash).
      if (completed >= run.rounds || ours.some((r) => r.status === 'failed') || run.resumes >= MAX_RESUMES) {
        if (run.resumes >= MAX_RESUMES) this.log.error({ experiment: exp.id, resumes: run.resumes }, `run not resumed: the coordinator restarted ${run.resumes} times during it`);
        await this.store.update(() => delete exp.run);
        continue;
      }
      const cut = ours[ours.length - 1]?.status === 'aborted' ? ours[ours.length - 1].round : null;
      this.claimRun(exp);
      await this.store.update(() => void (run.resumes += 1));
      resumed.push(exp.id);
      this.log.warn({ experiment: exp.id, redoes: cut, rounds: run.rounds - completed }, 'run resumed after a restart');
      const until = Date.now() + exp.config.deadlineSeconds * 1000;
      const expected = new Set((ours[ours.length - 1]?.sites ?? []).map((s) => s.site));
      const waiting = () => {
        const ready = readySites();
        return ready.length < exp.config.minFitClients || [...expected].some((s) => !ready.includes(s));
      };
      const sitesBack = async (r: Run) => {
        while (waiting() && Date.now() < until && !r.stop) await new Promise((f) => setTimeout(f, 200));
      };
      this.runInBackground(exp, run.rounds - completed, cut, sitesBack);
    }
    return resumed;
  }

  /** Registers the experiment's run (before any await: a second start is refused). */
  private claimRun(exp: ExperimentRecord): Run {
    if (this.runs.has(exp.id)) throw new RoundError(`rounds of experiment ${exp.id} are already running`);
    if (this.runs.size > 0) throw new RoundError(`another experiment's rounds are running (${[...this.runs.keys()].join(', ')}); one experiment at a time`);
    const run: Run = { stop: false, reason: '' };
    this.runs.set(exp.id, run);
    return run;
  }

  /** Resolves when every run has ended (after stop(): the coordinator's shutdown waits for it before closing the store). */
  async settled(): Promise<void> {
    await Promise.all(this.running);
  }

  private runInBackground(exp: ExperimentRecord, count: number, redoes: number | null, before?: (run: Run) => Promise<void>): void {
    const run = this.runs.get(exp.id)!;
    const done = (async () => {
      try {
        await before?.(run);
        for (let i = 0; i < count && !run.stop; i++) {
          const record = await this.runRound(exp, run, i === 0 ? redoes : null);
          if (record.status !== 'completed') break;
        }
        // Ended (all rounds, a failed round, or stopped): nothing to resume. A coordinator
        // shutting down leaves it, so that its next start goes on.
        if (!run.shutdown) await this.store.update(() => delete exp.run);
      } catch (err) {
        this.log.error({ experiment: exp.id, err: (err as Error).message }, 'round run failed');
      } finally {
        this.runs.delete(exp.id);
      }
    })();
    this.running.add(done);
    void done.finally(() => this.running.delete(done));
  }

  /**
   * Stops an experiment's rounds: the open round is aborted (nothing published), no new round
   * starts. `shutdown`: the coordinator is stopping — the run stays recorded and its next start
   * resumes it; otherwise (a researcher's stop) the run ends.
   */
  stop(experimentId: string, reason = 'stopped by the researcher', o: { shutdown?: boolean } = {}): boolean {
    const run = this.runs.get(experimentId);
    if (!run) return false;
    run.stop = true;
    run.reason = reason;
    run.shutdown = o.shutdown === true;
    if (this.phase?.experiment === experimentId) this.phase.done();
    return true;
  }

  /** Current global parameters of an experiment (cached; loaded from its blob once). */
  currentParams(exp: ExperimentRecord): Float32Array {
    let p = this.params.get(exp.id);
    if (!p) {
      p = this.store.loadParams(exp.currentVersion, exp.spec);
      this.params.set(exp.id, p);
    }
    return p;
  }

  private experiment(id: string): ExperimentRecord {
    const exp = this.store.data.experiments.find((e) => e.id === id);
    if (!exp) throw new RoundError(`no experiment ${id}`, 404);
    return exp;
  }

  private async nextRound(experiment: string): Promise<number> {
    return 1 + (await this.store.lastRoundNumber(experiment));
  }

  private findSite(name: string) {
    return this.store.data.sites.find((s) => s.name === name);
  }

  /** One round: sample → configure → collect (fit) → aggregate → publish → evaluate. */
  private async runRound(exp: ExperimentRecord, run: Run, redoes: number | null = null): Promise<RoundRecord> {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const strategy = this.strategies.of(exp);
    const protection = this.protections[exp.config.security ?? 'plain'];
    const round = await this.nextRound(exp.id);

    // Sample: only sites the federation admin certified, and of those the ones the protection
    // admits (under CKKS, those holding the experiment's key).
    const certified = this.certifiedSites(exp, this.gateway.readySites());
    const available = protection.eligible(exp, certified);
    const { sites, config } = strategy.configureFit(round, available);
    const record = await this.openRecord(exp.id, round, redoes);
    const finish = (status: RoundRecord['status'], reason: string | null) => this.finish(exp, record, t0, status, reason);
    if (sites.length < exp.config.minFitClients) {
      const uncertified = this.gateway.readySites().length - certified.length;
      return finish('failed', `only ${available.length} site(s) online (${available.join(', ') || 'none'})${uncertified > 0 ? ` and ${uncertified} online without a valid site certificate` : ''}; the round needs at least ${exp.config.minFitClients}`);
    }

    // Configure: the privacy layer's and the secure aggregator's parts of the round. Under CKKS
    // the coordinator has no plaintext model (after round 0) and needs none.
    const current = protection.clearModel ? this.currentParams(exp) : null;
    const privacy = PrivacyLayer.forRound(exp, record, sites.length, available.length);
    record.timings.configureMs = performance.now() - t0;
    let aggregation: RoundAggregation;
    try {
      aggregation = await protection.open({
        exp,
        round,
        sites,
        size: layoutOf(exp.spec).size,
        privacy,
        keepUpdates: exp.config.deterministic === true || strategy.rule.needsIndividualUpdates,
        certificate: (site) => this.findSite(site)!.certificate!,
        hooks: this.aggregationHooks(exp.id, round),
      });
    } catch (err) {
      return finish('failed', (err as Error).message);
    }

    // Collect the updates, then their aggregate (in the clear or encrypted) — or why there is none.
    this.aggregation = { experiment: exp.id, round, impl: aggregation, privacy };
    let fit: RoundPhase;
    let aggregate: AggregatedFit | EncryptedAggregate;
    try {
      const fitIns = encodeMessage({ type: 'fit_ins', experiment: exp.id, round, modelVersion: exp.currentVersion, spec: exp.spec, config, ...privacy.fitInsFields(), ...aggregation.fitInsFields() }, current ? float32Bytes(current) : undefined, this.gateway.chunkBytes);
      fit = await this.collect('fit', exp, record, sites, fitIns, run);
      const received = fit.delivered();
      // Updates seen one by one were released, whatever happens to the round now.
      if (aggregation.revealsUpdates && received > 0) await privacy.charge(this.store);
      record.timings.fitMs = performance.now() - t0 - record.timings.configureMs;
      if (run.stop) return finish('aborted', run.reason);
      const aborted = aggregation.failure();
      if (aborted) return finish('failed', fit.failure(`secure aggregation aborted: ${aborted}`, exp.config.minFitClients, aborted));
      if (received < exp.config.minFitClients) {
        return finish('failed', fit.failure(`only ${received} of ${sites.length} site(s) returned an update (dropped: ${fit.describeMissing()}); the round needs at least ${exp.config.minFitClients}`, exp.config.minFitClients));
      }
      try {
        aggregate = await aggregation.finish();
      } catch (err) {
        if (err instanceof AggregationAbort) return finish('failed', fit.failure(`secure aggregation aborted: ${err.message}`, exp.config.minFitClients, err.message));
        throw err;
      } finally {
        const described = aggregation.describe();
        if (described) {
          record.security = { mode: aggregation.security, ...described };
          privacy.recordSecureSum(described);
        }
      }
      if (!aggregation.revealsUpdates) await privacy.charge(this.store); // their secure sum was released
    } finally {
      this.aggregation = null;
      aggregation.dispose?.();
    }
    record.fitMetrics = weightedMetrics(fit.fitMetrics);

    // Aggregate into the next version: through the privacy layer into the strategy, or (CKKS) encrypted as it is.
    const t1 = performance.now();
    privacy.adaptClip(aggregate.sites);
    let next: NextVersion;
    try {
      next = nextVersion({ exp, round, store: this.store, strategy, privacy, current, aggregate });
    } catch (err) {
      if (err instanceof FedmedError) return finish('failed', `${strategy.name} could not aggregate: ${err.message}`);
      throw err;
    }
    record.timings.aggregateMs = performance.now() - t1;
    const tp = performance.now();
    const versionId = await this.publish(exp, record, privacy, next);
    record.timings.publishMs = performance.now() - tp;
    record.timings.persistedMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    // CPU the coordinator process spent on the round so far (all its threads), to tell its own
    // cost apart from waiting for the edges and the network.
    record.timings.coordinatorCpuMs = (cpu.user + cpu.system) / 1000;

    // Evaluate (failures here do not fail the round: the version is already published).
    const evalSites = strategy.configureEvaluate(round, this.gateway.readySites());
    if (evalSites.length > 0 && !run.stop) {
      const te = performance.now();
      const evalIns = encodeMessage({ type: 'eval_ins', experiment: exp.id, round, modelVersion: versionId, spec: exp.spec, ...protection.evalInsFields(exp) }, next.params ? float32Bytes(next.params) : undefined, this.gateway.chunkBytes);
      const ev = await this.collect('evaluate', exp, record, evalSites, evalIns, run);
      if (ev.evaluations.length > 0) record.evalMetrics = strategy.aggregateEvaluate(round, ev.evaluations);
      record.timings.evaluateMs = performance.now() - te;
    }
    const done = await finish('completed', null);
    this.onVersionPublished(exp, versionId);
    return done;
  }

  /** The record of a round that starts now (persisted before anything is sent). */
  private async openRecord(experiment: string, round: number, redoes: number | null): Promise<RoundRecord> {
    const record: RoundRecord = {
      experiment,
      round,
      status: 'running',
      startedAt: new Date().toISOString(),
      endedAt: null,
      reason: null,
      sites: [],
      fitMetrics: null,
      evalMetrics: null,
      versionId: null,
      timings: {},
      bytesSent: 0,
      bytesReceived: 0,
      ...(redoes !== null ? { redoes } : {}),
    };
    await this.store.writeHistory({ rounds: [record] });
    this.notify((o) => o.roundStarted(record));
    return record;
  }

  /** Closes a round's record with its outcome and persists it. */
  private async finish(exp: ExperimentRecord, record: RoundRecord, t0: number, status: RoundRecord['status'], reason: string | null): Promise<RoundRecord> {
    record.status = status;
    record.reason = reason;
    record.endedAt = new Date().toISOString();
    record.timings.totalMs = performance.now() - t0;
    this.recentlyEnded.set(exp.id, record.round);
    await this.store.writeHistory({ rounds: [record] });
    this.notify((o) => o.roundEnded(exp, record));
    const log = status === 'completed' ? this.log.info.bind(this.log) : this.log.warn.bind(this.log);
    log({ experiment: exp.id, round: record.round, status, reason, ms: Math.round(record.timings.totalMs) }, `round ${record.round} ${status}`);
    return record;
  }

  /** Records the new version as the experiment's current one (the model blob is already stored). */
  private async publish(exp: ExperimentRecord, record: RoundRecord, privacy: PrivacyLayer, next: NextVersion): Promise<string> {
    const { version } = next;
    // One transaction: the version, the round that made it, and the experiment now pointing at it.
    const published = { ...version, experiment: exp.id, round: record.round, parent: exp.currentVersion, specHash: specHash(exp.spec), createdAt: new Date().toISOString() };
    await this.store.update(
      () => {
        exp.currentVersion = version.id;
        exp.roundsCompleted++;
        privacy.published();
        record.versionId = version.id;
        for (const s of record.sites) if (s.phase === 'fit' && s.status === 'done') this.findSite(s.site)!.roundsJoined++;
      },
      { versions: [published], rounds: [record] },
    );
    if (next.params) this.params.set(exp.id, next.params);
    this.notify((o) => o.versionPublished(exp, record, published));
    return version.id;
  }

  /** How a secure aggregator reaches the sites and the open fit phase. */
  private aggregationHooks(experiment: string, round: number): FitAggregationHooks {
    return {
      send: (site, m) => this.gateway.send(site, m),
      drop: (site, reason) => {
        const p = this.phase;
        if (p?.kind === 'fit' && p.sites.get(site)?.status === 'sent') p.settle(site, 'dropped', reason, true);
        else this.log.warn({ experiment, round, site, reason }, 'site dropped from secure aggregation');
      },
      endPhase: () => this.phase?.done(),
      stage: (site, stage, status, detail) => this.notify((o) => o.secaggStage(experiment, round, site, stage, status, detail)),
    };
  }

  /** Online sites with a valid admin certificate (the others are left out, and logged once per round). */
  private certifiedSites(exp: ExperimentRecord, online: string[]): string[] {
    const left: { site: string; reason: string }[] = [];
    const ok = online.filter((name) => {
      const site = this.findSite(name);
      const reason = site ? this.federation.uncertified(site) : 'unknown site';
      if (reason) left.push({ site: name, reason });
      return !reason;
    });
    if (left.length > 0) this.log.warn({ experiment: exp.id, sites: left }, 'online sites without a valid site certificate are never sampled ("fedmed site certify")');
    return ok;
  }

  /** Sends one phase's instructions and waits for every site's answer, a dropout, or the deadline. */
  private async collect(kind: RoundPhase['kind'], exp: ExperimentRecord, record: RoundRecord, sites: string[], frames: Buffer[], run: { stop: boolean }): Promise<RoundPhase> {
    const phase = new RoundPhase(kind, exp.id, record.round, record, sites, {
      warn: (o, msg) => this.log.warn(o, msg),
      cancel: (site, reason) => void this.gateway.send(site, { type: 'round_cancel', experiment: exp.id, round: record.round, reason }).catch(() => {}),
      gone: (site) => this.aggregation?.impl.siteGone(site),
      observe: (entry) => this.notify((o) => o.phaseSite(kind, exp.id, record.round, entry)),
    });
    this.phase = phase;
    // Which sites were asked is on disk before anything is sent (a crash leaves that record).
    await this.store.writeHistory({ rounds: [record] });
    const before = sites.map((s) => this.gateway.bytes(s));
    const t0 = performance.now();
    for (const f of frames) markReleasable(f);
    await Promise.all(sites.map((site) => this.gateway.sendEncoded(site, frames).catch((err: Error) => phase.settle(site, 'dropped', `could not send: ${err.message}`))));
    for (const f of frames) releaseBuffer(f); // every socket has written them: free the model copy now
    record.timings[`${kind}SendMs`] = performance.now() - t0;
    phase.checkDone();
    const deadline = setTimeout(() => {
      for (const [site, e] of phase.sites) if (e.status === 'sent') phase.settle(site, 'dropped', `missed the ${exp.config.deadlineSeconds} s deadline`, true);
      phase.done();
    }, exp.config.deadlineSeconds * 1000);
    await phase.over;
    record.timings[`${kind}CollectMs`] = performance.now() - t0;
    clearTimeout(deadline);
    this.phase = null;
    // Tell sites still working that this phase is over (their results would be ignored).
    for (const [site, e] of phase.sites) {
      if (e.status === 'sent' || (run.stop && e.status !== 'done')) {
        if (e.status === 'sent') phase.settle(site, 'dropped', run.stop ? 'round stopped' : 'phase closed');
        void this.gateway.send(site, { type: 'round_cancel', experiment: exp.id, round: record.round, reason: e.reason ?? 'round closed' }).catch(() => {});
      }
    }
    sites.forEach((s, i) => {
      const after = this.gateway.bytes(s);
      record.bytesSent += Math.max(0, after.sent - before[i].sent);
      record.bytesReceived += Math.max(0, after.received - before[i].received);
    });
    return phase; // the caller persists the record (round finished, failed or version published)
  }

  /** Tells the observer; what it does (or throws) never reaches the round. */
  private notify(f: (o: RoundObserver) => void): void {
    try {
      f(this.observer);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'round observer failed');
    }
  }

  /** Records that a site was just seen (connected or disconnected). */
  private touch(site: string): void {
    const s = this.findSite(site);
    if (s) void this.store.update(() => void (s.lastSeen = new Date().toISOString()));
  }

  private onDisconnect(site: string, reason: string): void {
    this.touch(site);
    const p = this.phase;
    if (p?.sites.get(site)?.status === 'sent') p.settle(site, 'dropped', `disconnected during ${p.kind} (${reason})`);
    else this.aggregation?.impl.siteGone(site); // e.g. during SecAgg+ unmasking, after the fit phase
  }

  /** SecAgg+ key, share and unmask messages go to the open round's aggregation. */
  private onSecAggMessage(site: string, m: Extract<Message, { type: `secagg_${string}` }>): void {
    const a = this.aggregation;
    if (!a || a.experiment !== m.experiment || a.round !== m.round) {
      if (this.recentlyEnded.get(m.experiment) === m.round) return void this.log.info({ site, experiment: m.experiment, round: m.round, type: m.type }, 'late SecAgg+ message ignored (round closed)');
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `${m.type} for experiment ${m.experiment} round ${m.round}, which is not the open secure round`);
    }
    try {
      a.impl.onProtocolMessage(site, m);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      const p = this.phase;
      if (p?.kind === 'fit' && p.sites.get(site)?.status === 'sent') p.settle(site, 'failed', err.message);
      else a.impl.siteGone(site);
      throw err;
    }
  }

  private onMessage(site: string, m: Message, payload: Buffer): void {
    if (m.type === 'secagg_keys' || m.type === 'secagg_shares' || m.type === 'secagg_consistency_sig' || m.type === 'secagg_refused' || m.type === 'secagg_unmask_res') return this.onSecAggMessage(site, m);
    if (m.type !== 'fit_res' && m.type !== 'fit_failed' && m.type !== 'eval_res' && m.type !== 'eval_failed') {
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `unexpected ${m.type} message from an edge`);
    }
    const p = this.phase;
    const expected = m.type === 'eval_res' || m.type === 'eval_failed' ? 'evaluate' : 'fit';
    const entry = p && p.experiment === m.experiment && p.round === m.round && p.kind === expected ? p.sites.get(site) : undefined;
    if (!p || !entry) {
      if (this.recentlyEnded.get(m.experiment) === m.round || (p && p.experiment === m.experiment && p.round === m.round)) {
        this.log.info({ site, experiment: m.experiment, round: m.round, type: m.type }, 'late result ignored (phase already closed)');
        return;
      }
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `${m.type} for experiment ${m.experiment} round ${m.round}, which this site was not asked for`);
    }
    if (entry.status === 'done' || entry.status === 'failed') throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `duplicate ${m.type} for round ${m.round}`);
    if (m.type === 'fit_failed' || m.type === 'eval_failed') return this.onFailed(p, site, m);
    if (m.type === 'eval_res') {
      entry.numExamples = m.numExamples;
      entry.metrics = m.metrics;
      p.evaluations.push({ site, numExamples: this.cappedExamples(entry, p.experiment, m.numExamples), metrics: m.metrics });
      return p.settle(site, 'done');
    }
    const a = this.aggregation;
    try {
      if (!a) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'fit_res outside a fit phase');
      a.impl.addResult(site, m, payload, a.privacy.weight(m.numExamples));
    } catch (err) {
      this.notify((o) => o.rejected(p.experiment, p.round, site, 'invalid_update'));
      p.settle(site, 'failed', (err as Error).message);
      throw err;
    }
    entry.numExamples = m.numExamples;
    entry.metrics = m.metrics;
    p.fitMetrics.push({ numExamples: this.cappedExamples(entry, p.experiment, m.numExamples), metrics: m.metrics });
    a.privacy.addClipIndicator(m.clipIndicator);
    const record = this.findSite(site);
    if (record) recordDelivery(record, p.experiment, p.round);
    p.settle(site, 'done');
  }

  /**
   * A site's claimed example count capped at the experiment's maxExampleWeight (the weight its
   * update and metrics get; under DP updates weigh 1 anyway); a clipped claim is recorded on its entry.
   */
  private cappedExamples(entry: PhaseEntry, experiment: string, claimed: number): number {
    const exp = this.store.data.experiments.find((e) => e.id === experiment);
    const used = exp ? exampleWeight(exp.config, claimed) : claimed;
    if (used < claimed) entry.weightClipped = { claimed, used };
    return used;
  }

  /** A site's fit_failed or eval_failed: an ordinary failure, or a refusal (its policy) recorded on the site. */
  private onFailed(p: RoundPhase, site: string, m: Extract<Message, { type: 'fit_failed' | 'eval_failed' }>): void {
    const reason = siteText(m.reason);
    const entry = p.sites.get(site)!;
    if (m.refused) {
      entry.refused = m.refused;
      // The site's refusal list is about training (what it approved, its budget); a withheld evaluation shows in the round only.
      if (m.type === 'eval_failed') return p.settle(site, 'failed', reason);
      const record = this.findSite(site);
      if (record) recordRefusal(record, { experiment: p.experiment, round: p.round, kind: m.refused, reason, at: new Date().toISOString() });
    }
    p.settle(site, 'failed', reason);
  }
}
