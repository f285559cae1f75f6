/**
 * Runs an experiment's rounds: sample sites, send them the global model, collect updates until
 * all answered or the deadline passed, aggregate, persist the new version, then evaluate it on
 * the sites' local validation data. A site that disconnects is dropped from the round (and
 * re-admitted if it reconnects and delivers before the round closes); the round completes with
 * at least `minFitClients` updates, otherwise it fails with the reason and publishes nothing.
 */
import { createStrategy } from '../../shared/aggregation/createStrategy.js';
import { FederatedStrategy } from '../../shared/aggregation/federatedStrategy.js';
import { decodeRuleState, encodeRuleState } from '../../shared/aggregation/ruleStateFile.js';
import { weightedMetrics, type SiteEvaluation } from '../../shared/aggregation/strategy.js';
import { FedmedError } from '../../shared/errors.js';
import { encryptedVersionId, float32Bytes, specHash, versionHashes } from '../../shared/model/modelHash.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { CKKS_DEFAULTS, ckksMaxWeight, type CkksRoundParams } from '../../shared/secure/ckks/ckksParams.js';
import { CkksError } from '../../shared/secure/ckks/ckksErrors.js';
import { ckksContext } from '../../shared/secure/ckks/sealContext.js';
import { CkksAggregation, type EncryptedAggregate } from './ckksAggregation.js';
import type { VersionRecord } from '../store/storeSchema.js';
import { encodeMessage } from '../../shared/protocol/messageChannel.js';
import { markReleasable, releaseBuffer } from '../../shared/protocol/releasableBuffers.js';
import type { Message } from '../../shared/protocol/messages.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import type { ExperimentConfig } from '../experimentConfig.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ExperimentRecord, RoundRecord, RoundSiteRecord } from '../store/storeSchema.js';
import { PlainAggregator } from './plainAggregator.js';
import { experimentPrivacy } from './privacyLedger.js';
import { siteNoiseShare, siteNoiseStddev, type RoundPrivacy } from '../../shared/privacy/privacyConfig.js';
import { defaultCountStddev, nextClip, updateNoiseMultiplier } from '../../shared/privacy/adaptiveClipping.js';
import { fillGaussian } from '../../shared/privacy/gaussianNoise.js';
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import { SecAggAbort, SecAggProtocolError } from '../../shared/secure/secagg/secaggErrors.js';
import { maxWeightFor, quantLevels, SECAGG_DEFAULTS, type SecAggRoundParams } from '../../shared/secure/secagg/secaggParams.js';
import { newSession } from '../../shared/secure/secagg/secaggServer.js';
import { PlainAggregation, type FitAggregation } from './fitAggregation.js';
import { SecAggDriver } from './secAggDriver.js';

/** One N(0, stddev²) sample from the CSPRNG. */
function gaussian(stddev: number): number {
  const x = new Float64Array(1);
  fillGaussian(x, stddev);
  return x[0];
}

/** Central DP: N(0, stddev²) added to the sum of the clipped updates, from the CSPRNG. */
function addCentralNoise(sum: Float64Array, stddev: number): void {
  const noise = new Float64Array(sum.length);
  fillGaussian(noise, stddev);
  for (let i = 0; i < sum.length; i++) sum[i] += noise[i];
}

export class RoundError extends FedmedError {
  constructor(
    message: string,
    readonly status: 404 | 409 = 409,
  ) {
    super('ROUND', message);
  }
}

type Log = { info(o: object, msg: string): void; warn(o: object, msg: string): void; error(o: object, msg: string): void };

interface Phase {
  kind: 'fit' | 'evaluate';
  experiment: string;
  round: number;
  record: RoundRecord;
  sites: Map<string, RoundSiteRecord & { sentAt: number }>;
  evaluations: SiteEvaluation[];
  numExamples: Map<string, number>;
  fitMetrics: { numExamples: number; metrics: { loss: number; accuracy: number; auc?: number } }[];
  /** Adaptive clipping: sum of the sites' noised (b − 1/2) reports. */
  clipIndicatorSum: number;
  done: () => void;
}

export function strategyFor(config: ExperimentConfig): FederatedStrategy {
  return new FederatedStrategy(
    {
      fractionFit: config.fractionFit,
      minFitClients: config.minFitClients,
      fractionEvaluate: config.fractionEvaluate,
      minEvaluateClients: config.minEvaluateClients,
      fit: config.fit,
      seed: config.seed,
    },
    createStrategy(config.strategy ?? 'fedavg', config.strategyOptions ?? {}),
  );
}

export class RoundEngine {
  private readonly aggregator = new PlainAggregator();
  private readonly runs = new Map<string, { stop: boolean; reason: string }>();
  private phase: Phase | null = null;
  /** Rounds recently finished per experiment, to recognise late (not malicious) results. */
  private readonly recentlyEnded = new Map<string, number>();
  private readonly params = new Map<string, Float32Array>();
  /** Each experiment's strategy: server optimisers keep state (moments) across rounds. */
  private readonly strategies = new Map<string, FederatedStrategy>();
  /** Whether the open round averages updates with equal weights (DP) or by example counts. */
  private equalWeights = false;
  /** Called when a round has published (and evaluated) a new version. */
  onVersionPublished: (experiment: ExperimentRecord, versionId: string) => void = () => {};
  /** The open round's aggregation (plain, SecAgg+ or CKKS); outlives the fit phase for unmasking. */
  private aggregation: { experiment: string; round: number; impl: FitAggregation<AggregatedFit | EncryptedAggregate> } | null = null;
  /** Test instrumentation: every encrypted update the coordinator receives in a CKKS round. */
  ckksObserver?: (site: string, payload: Uint8Array) => void;

  constructor(
    private readonly store: CoordinatorStore,
    private readonly gateway: EdgeGateway,
    private readonly federation: CoordinatorFederation,
    private readonly log: Log,
  ) {
    gateway.events = {
      onMessage: (site, m, p) => this.onMessage(site, m, p),
      onDisconnect: (site, reason) => this.onDisconnect(site, reason),
      onConnect: (site) => this.touch(site),
    };
  }

  /** After a restart: rounds left running are marked aborted (nothing was published for them). */
  async recover(): Promise<RoundRecord[]> {
    const open = this.store.data.rounds.filter((r) => r.status === 'running');
    if (open.length === 0) return [];
    await this.store.update(() => {
      for (const r of open) {
        r.status = 'aborted';
        r.reason = 'coordinator restarted during the round; nothing was published for it';
        r.endedAt = new Date().toISOString();
      }
    });
    for (const r of open) this.log.warn({ experiment: r.experiment, round: r.round }, 'round aborted: coordinator restarted during it');
    return open;
  }

  /** How plain rounds add updates: 'wasm-simd', or 'js' where WebAssembly SIMD is unavailable (logged at start). */
  get summation(): 'wasm-simd' | 'js' {
    return this.aggregator.summation;
  }

  isRunning(experiment: string): boolean {
    return this.runs.has(experiment);
  }

  /** Starts `count` rounds in the background; rejects if rounds of this experiment are running. */
  start(experimentId: string, count: number): { experiment: string; firstRound: number; rounds: number } {
    const exp = this.experiment(experimentId);
    if (this.runs.has(exp.id)) throw new RoundError(`rounds of experiment ${exp.id} are already running`);
    if (this.runs.size > 0) throw new RoundError(`another experiment's rounds are running (${[...this.runs.keys()].join(', ')}); one experiment at a time`);
    const run = { stop: false, reason: '' };
    this.runs.set(exp.id, run);
    const firstRound = this.nextRound(exp.id);
    void (async () => {
      try {
        for (let i = 0; i < count && !run.stop; i++) {
          const record = await this.runRound(exp, run);
          if (record.status !== 'completed') break;
        }
      } catch (err) {
        this.log.error({ experiment: exp.id, err: (err as Error).message }, 'round run failed');
      } finally {
        this.runs.delete(exp.id);
      }
    })();
    return { experiment: exp.id, firstRound, rounds: count };
  }

  /** Stops an experiment's rounds: the open round is aborted (nothing published), no new round starts. */
  stop(experimentId: string, reason = 'stopped by the researcher'): boolean {
    const run = this.runs.get(experimentId);
    if (!run) return false;
    run.stop = true;
    run.reason = reason;
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

  /**
   * The experiment's strategy, created once; a stateful rule resumes from the state saved with
   * the current version (after a restart), or starts fresh (and says so) if there is none.
   */
  private strategy(exp: ExperimentRecord): FederatedStrategy {
    let s = this.strategies.get(exp.id);
    if (s) return s;
    s = strategyFor(exp.config);
    if (exp.roundsCompleted > 0) {
      const saved = this.store.loadStrategyState(exp.id, exp.currentVersion);
      if (saved) s.rule.importState(decodeRuleState(saved));
      else if (['fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'].includes(s.name)) {
        this.log.warn({ experiment: exp.id, strategy: s.name }, 'no saved optimiser state for the current version; the server optimiser starts from zero moments');
      }
    }
    this.strategies.set(exp.id, s);
    return s;
  }

  private experiment(id: string): ExperimentRecord {
    const exp = this.store.data.experiments.find((e) => e.id === id);
    if (!exp) throw new RoundError(`no experiment ${id}`, 404);
    return exp;
  }

  private nextRound(experiment: string): number {
    return 1 + Math.max(0, ...this.store.data.rounds.filter((r) => r.experiment === experiment).map((r) => r.round));
  }

  private findSite(name: string) {
    return this.store.data.sites.find((s) => s.name === name);
  }

  private async runRound(exp: ExperimentRecord, run: { stop: boolean; reason: string }): Promise<RoundRecord> {
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const strategy = this.strategy(exp);
    const round = this.nextRound(exp.id);
    const ckks = exp.config.security === 'ckks';
    // Only sites the federation admin certified are sampled; under CKKS, only those holding the experiment's key.
    const certified = this.certifiedSites(exp, this.gateway.readySites());
    const available = ckks ? this.keyedSites(exp, certified) : certified;
    const { sites, config } = strategy.configureFit(round, available);
    const record: RoundRecord = {
      experiment: exp.id,
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
    };
    await this.store.update((d) => void d.rounds.push(record));
    const finish = async (status: RoundRecord['status'], reason: string | null): Promise<RoundRecord> => {
      record.status = status;
      record.reason = reason;
      record.endedAt = new Date().toISOString();
      record.timings.totalMs = performance.now() - t0;
      this.recentlyEnded.set(exp.id, round);
      await this.store.write();
      const log = status === 'completed' ? this.log.info.bind(this.log) : this.log.warn.bind(this.log);
      log({ experiment: exp.id, round, status, reason, ms: Math.round(record.timings.totalMs) }, `round ${round} ${status}`);
      return record;
    };
    if (sites.length < exp.config.minFitClients) {
      const uncertified = this.gateway.readySites().length - certified.length;
      return finish('failed', `only ${available.length} site(s) online (${available.join(', ') || 'none'})${uncertified > 0 ? ` and ${uncertified} online without a valid site certificate` : ''}; the round needs at least ${exp.config.minFitClients}`);
    }
    // Under CKKS the coordinator has no plaintext model (after round 0) and needs none.
    const current = ckks ? null : this.currentParams(exp);
    const size = layoutOf(exp.spec).size;
    const dp = exp.config.privacy;
    // With adaptive clipping the count of unclipped updates takes part of the noise budget:
    // the update noise uses z_Δ, the accounting keeps z.
    const clip = exp.clip ?? dp?.clip ?? 0;
    const countStddev = dp?.adaptiveClipping ? (dp.adaptiveClipping.countStddev ?? defaultCountStddev(sites.length, dp.noiseMultiplier!)) : 0;
    const deltaZ = dp ? (dp.adaptiveClipping ? updateNoiseMultiplier(dp.noiseMultiplier!, countStddev) : dp.noiseMultiplier!) : 0;
    const privacy: RoundPrivacy | undefined = dp
      ? {
          mode: dp.mode,
          clip,
          noiseMultiplier: dp.noiseMultiplier!,
          noiseStddev: siteNoiseStddev({ ...dp, clip }, deltaZ, sites.length),
          samplingRate: sites.length / available.length,
          delta: dp.delta,
          ...(dp.adaptiveClipping ? { countNoiseStddev: siteNoiseShare(dp, countStddev, sites.length) } : {}),
        }
      : undefined;
    if (privacy) record.privacy = { mode: privacy.mode, noiseMultiplier: privacy.noiseMultiplier, samplingRate: privacy.samplingRate, clip: privacy.clip, delta: privacy.delta, charged: false };
    this.equalWeights = privacy !== undefined; // DP: equal weights bound each site's influence
    record.timings.configureMs = performance.now() - t0;

    // Fit phase.
    let aggregation: FitAggregation<AggregatedFit | EncryptedAggregate>;
    try {
      aggregation = await this.fitAggregation(exp, round, sites, size, privacy);
    } catch (err) {
      return finish('failed', (err as Error).message);
    }
    this.aggregation = { experiment: exp.id, round, impl: aggregation };
    const charge = () => {
      // Updates (or their secure sum) were released to the coordinator: the round counts against the budget.
      if (!record.privacy) return;
      record.privacy.charged = true;
      record.privacy.epsilon = experimentPrivacy(exp, this.store.data.rounds).epsilon ?? undefined;
    };
    let agg: AggregatedFit | EncryptedAggregate;
    let fit: Phase;
    try {
      fit = await this.collect('fit', exp, record, sites, encodeMessage({ type: 'fit_ins', experiment: exp.id, round, modelVersion: exp.currentVersion, spec: exp.spec, config, ...(privacy ? { privacy } : {}), ...aggregation.fitInsFields() }, current ? float32Bytes(current) : undefined, this.gateway.chunkBytes), run);
      const received = [...fit.sites.values()].filter((e) => e.status === 'done').length;
      if (aggregation.security === 'plain' && received > 0) charge();
      record.timings.fitMs = performance.now() - t0 - record.timings.configureMs;
      if (run.stop) return finish('aborted', run.reason);
      const aborted = aggregation.failure();
      if (aborted) return finish('failed', `secure aggregation aborted: ${aborted}`);
      if (received < exp.config.minFitClients) {
        return finish('failed', `only ${received} of ${sites.length} site(s) returned an update (dropped: ${this.describeMissing(fit)}); the round needs at least ${exp.config.minFitClients}`);
      }
      try {
        agg = await aggregation.finish();
      } catch (err) {
        if (err instanceof SecAggAbort) return finish('failed', `secure aggregation aborted: ${err.message}`);
        throw err;
      } finally {
        const described = aggregation.describe();
        if (described) record.security = { mode: aggregation.security, ...described };
      }
      if (aggregation.security !== 'plain') charge();
    } finally {
      this.aggregation = null;
      aggregation.dispose?.();
    }
    record.fitMetrics = weightedMetrics(fit.fitMetrics);
    const t1 = performance.now();
    if (dp?.adaptiveClipping && record.privacy) {
      let indicators = fit.clipIndicatorSum;
      if (privacy?.mode === 'central') indicators += gaussian(countStddev);
      const unclipped = Math.min(1, Math.max(0, indicators / agg.sites + 0.5)); // sites report b − 1/2
      record.privacy.unclippedFraction = unclipped;
      record.privacy.nextClip = nextClip(clip, unclipped, dp.adaptiveClipping);
    }
    let next: Float32Array | null = null;
    let version: Pick<VersionRecord, 'id' | 'paramsSha256' | 'encrypted'>;
    if ('bytes' in agg) {
      // CKKS: the encrypted aggregate is the version; every site applies it to its copy.
      const id = encryptedVersionId(exp.spec, exp.currentVersion, agg.sha256);
      this.store.saveEncryptedVersion(id, agg.bytes);
      version = { id, paramsSha256: null, encrypted: { sha256: agg.sha256, bytes: agg.bytes.byteLength } };
    } else {
      if (privacy?.mode === 'central') addCentralNoise(agg.weightedDeltaSum, deltaZ * privacy.clip);
      try {
        next = strategy.aggregateFit(round, current!, agg);
      } catch (err) {
        if (err instanceof FedmedError) return finish('failed', `${strategy.name} could not aggregate: ${err.message}`);
        throw err;
      }
      version = versionHashes(exp.spec, next);
      this.store.saveParams(version.id, exp.spec, next, version.paramsSha256!);
      const ruleState = strategy.rule.exportState();
      if (Object.keys(ruleState).length > 0) this.store.saveStrategyState(exp.id, version.id, encodeRuleState(ruleState));
    }
    record.timings.aggregateMs = performance.now() - t1;
    const versionId = version.id;
    await this.store.update((d) => {
      d.versions.push({ ...version, experiment: exp.id, round, parent: exp.currentVersion, specHash: specHash(exp.spec), createdAt: new Date().toISOString() });
      exp.currentVersion = versionId;
      exp.roundsCompleted++;
      if (record.privacy?.nextClip !== undefined) exp.clip = record.privacy.nextClip;
      record.versionId = versionId;
      for (const s of record.sites) if (s.phase === 'fit' && s.status === 'done') this.findSite(s.site)!.roundsJoined++;
    });
    if (next) this.params.set(exp.id, next);
    record.timings.persistedMs = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    // CPU the coordinator process spent on the round so far (all its threads), to tell its own
    // cost apart from waiting for the edges and the network.
    record.timings.coordinatorCpuMs = (cpu.user + cpu.system) / 1000;

    // Evaluation phase (failures here do not fail the round: the version is already published).
    const evalSites = strategy.configureEvaluate(round, this.gateway.readySites());
    if (evalSites.length > 0 && !run.stop) {
      const te = performance.now();
      const ev = await this.collect('evaluate', exp, record, evalSites, encodeMessage({ type: 'eval_ins', experiment: exp.id, round, modelVersion: versionId, spec: exp.spec, ...(next ? {} : { ckksKeySet: exp.config.ckks!.keySet! }) }, next ? float32Bytes(next) : undefined, this.gateway.chunkBytes), run);
      if (ev.evaluations.length > 0) record.evalMetrics = strategy.aggregateEvaluate(round, ev.evaluations);
      record.timings.evaluateMs = performance.now() - te;
    }
    const done = await finish('completed', null);
    this.onVersionPublished(exp, versionId);
    return done;
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

  /** Sites that hold a wrapped copy of the CKKS experiment's key (the others cannot take part). */
  private keyedSites(exp: ExperimentRecord, online: string[]): string[] {
    const set = this.store.data.ckksKeySets?.find((k) => k.id === exp.config.ckks?.keySet);
    const granted = new Set(set?.sites.map((s) => s.site) ?? []);
    const missing = online.filter((s) => !granted.has(s));
    if (missing.length > 0) this.log.warn({ experiment: exp.id, keySet: set?.id, sites: missing }, 'online sites without a key for this CKKS experiment are left out ("fedmed federation keys grant")');
    return online.filter((s) => granted.has(s));
  }

  /** The round's aggregation: in the clear, SecAgg+ or CKKS with the experiment's parameters. */
  private async fitAggregation(exp: ExperimentRecord, round: number, sites: string[], size: number, privacy: RoundPrivacy | undefined): Promise<FitAggregation<AggregatedFit | EncryptedAggregate>> {
    if (exp.config.security === 'ckks') {
      const range = exp.config.ckks?.range ?? CKKS_DEFAULTS.range;
      const maxWeight = this.equalWeights ? 1 : ckksMaxWeight(sites.length, range);
      if (maxWeight < 1) throw new RoundError(`CKKS with ${sites.length} sites and range ${range} leaves no room in the last level for weights; lower ckks.range`);
      const params: CkksRoundParams = { mode: 'ckks', keySet: exp.config.ckks!.keySet!, range, maxWeight };
      return new CkksAggregation(await ckksContext(), params, size, this.ckksObserver);
    }
    if ((exp.config.security ?? 'plain') === 'plain') {
      const keepUpdates = exp.config.deterministic === true || this.strategy(exp).rule.needsIndividualUpdates;
      this.aggregator.reset(size, { keepUpdates, normBound: exp.config.normBound });
      return new PlainAggregation(this.aggregator);
    }
    const sa = { ...SECAGG_DEFAULTS, ...exp.config.secagg };
    // Distributed DP: each site's noise share is added as integers (quantisation steps).
    const noiseStddev = privacy?.mode === 'distributed' ? privacy.noiseStddev / (sa.range / quantLevels(sa.bits)) : 0;
    const maxWeight = this.equalWeights ? 1 : maxWeightFor(sites.length, sa.bits, noiseStddev * Math.sqrt(sites.length));
    if (maxWeight < 1) throw new RoundError(`SecAgg+ with ${sites.length} sites at ${sa.bits} bits leaves no room for weights or noise without wrapping; lower secagg.bits`);
    const params: SecAggRoundParams = { mode: 'secagg', session: newSession(), bits: sa.bits, range: sa.range, maxWeight, noiseStddev };
    return new SecAggDriver({
      experiment: exp.id,
      round,
      sites,
      params,
      config: sa,
      certificate: (site) => this.findSite(site)!.certificate!,
      size,
      phaseTimeoutMs: Math.min(sa.phaseTimeoutSeconds, exp.config.deadlineSeconds) * 1000,
      hooks: {
        send: (site, m) => this.gateway.send(site, m),
        drop: (site, reason) => {
          const p = this.phase;
          if (p?.kind === 'fit' && p.sites.get(site)?.status === 'sent') this.settle(p, site, 'dropped', reason, true);
          else this.log.warn({ experiment: exp.id, round, site, reason }, 'site dropped from secure aggregation');
        },
        endPhase: () => this.phase?.done(),
      },
    });
  }

  /** Sends one phase's instructions and waits for every site's answer, a dropout, or the deadline. */
  private async collect(kind: Phase['kind'], exp: ExperimentRecord, record: RoundRecord, sites: string[], frames: Buffer[], run: { stop: boolean }): Promise<Phase> {
    let resolveDone!: () => void;
    const finished = new Promise<void>((r) => (resolveDone = r));
    const phase: Phase = { kind, experiment: exp.id, round: record.round, record, sites: new Map(), evaluations: [], numExamples: new Map(), fitMetrics: [], clipIndicatorSum: 0, done: resolveDone };
    this.phase = phase;
    const now = Date.now();
    for (const site of sites) {
      const entry = { site, phase: kind, status: 'sent' as const, sentAt: now };
      phase.sites.set(site, entry);
      record.sites.push(entry);
    }
    const before = sites.map((s) => this.gateway.bytes(s));
    const t0 = performance.now();
    for (const f of frames) markReleasable(f);
    await Promise.all(
      sites.map((site) =>
        this.gateway.sendEncoded(site, frames).catch((err: Error) => this.settle(phase, site, 'dropped', `could not send: ${err.message}`)),
      ),
    );
    for (const f of frames) releaseBuffer(f); // every socket has written them: free the model copy now
    record.timings[`${kind}SendMs`] = performance.now() - t0;
    this.checkDone(phase);
    const deadline = setTimeout(() => {
      for (const [site, e] of phase.sites) if (e.status === 'sent') this.settle(phase, site, 'dropped', `missed the ${exp.config.deadlineSeconds} s deadline`, true);
      resolveDone();
    }, exp.config.deadlineSeconds * 1000);
    await finished;
    record.timings[`${kind}CollectMs`] = performance.now() - t0;
    clearTimeout(deadline);
    this.phase = null;
    // Tell sites still working that this phase is over (their results would be ignored).
    for (const [site, e] of phase.sites) {
      if (e.status === 'sent' || (run.stop && e.status !== 'done')) {
        if (e.status === 'sent') this.settle(phase, site, 'dropped', run.stop ? 'round stopped' : 'phase closed');
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

  private settle(phase: Phase, site: string, status: RoundSiteRecord['status'], reason?: string, cancel = false): void {
    const e = phase.sites.get(site);
    if (!e) return;
    e.status = status;
    e.seconds = (Date.now() - e.sentAt) / 1000;
    if (reason) e.reason = reason;
    if (status === 'dropped' || status === 'failed') {
      this.log.warn({ experiment: phase.experiment, round: phase.round, phase: phase.kind, site, reason }, `site ${status}`);
      if (phase.kind === 'fit') this.aggregation?.impl.siteGone(site);
    }
    if (cancel) void this.gateway.send(site, { type: 'round_cancel', experiment: phase.experiment, round: phase.round, reason: reason ?? 'dropped' }).catch(() => {});
    this.checkDone(phase);
  }

  private checkDone(phase: Phase): void {
    if ([...phase.sites.values()].every((e) => e.status !== 'sent')) phase.done();
  }

  private describeMissing(phase: Phase): string {
    const missing = [...phase.sites.values()].filter((e) => e.status !== 'done');
    return missing.map((e) => `${e.site}: ${e.reason ?? e.status}`).join('; ') || 'none';
  }

  /** Records that a site was just seen (connected or disconnected). */
  private touch(site: string): void {
    const s = this.findSite(site);
    if (s) void this.store.update(() => void (s.lastSeen = new Date().toISOString()));
  }

  private onDisconnect(site: string, reason: string): void {
    this.touch(site);
    const p = this.phase;
    if (p?.sites.get(site)?.status === 'sent') this.settle(p, site, 'dropped', `disconnected during ${p.kind} (${reason})`);
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
      if (!(err instanceof SecAggProtocolError)) throw err;
      const p = this.phase;
      if (p?.kind === 'fit' && p.sites.get(site)?.status === 'sent') this.settle(p, site, 'failed', err.message);
      else a.impl.siteGone(site);
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, err.message);
    }
  }

  private onMessage(site: string, m: Message, payload: Buffer): void {
    if (m.type === 'secagg_keys' || m.type === 'secagg_shares' || m.type === 'secagg_consistency_sig' || m.type === 'secagg_refused' || m.type === 'secagg_unmask_res') return this.onSecAggMessage(site, m);
    if (m.type !== 'fit_res' && m.type !== 'fit_failed' && m.type !== 'eval_res') {
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `unexpected ${m.type} message from an edge`);
    }
    const p = this.phase;
    const expected = m.type === 'eval_res' ? 'evaluate' : 'fit';
    const entry = p && p.experiment === m.experiment && p.round === m.round && p.kind === expected ? p.sites.get(site) : undefined;
    if (!p || !entry) {
      if (this.recentlyEnded.get(m.experiment) === m.round || (p && p.experiment === m.experiment && p.round === m.round)) {
        this.log.info({ site, experiment: m.experiment, round: m.round, type: m.type }, 'late result ignored (phase already closed)');
        return;
      }
      throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `${m.type} for experiment ${m.experiment} round ${m.round}, which this site was not asked for`);
    }
    if (entry.status === 'done' || entry.status === 'failed') throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `duplicate ${m.type} for round ${m.round}`);
    if (m.type === 'fit_failed') return this.settle(p, site, 'failed', m.reason);
    if (m.type === 'eval_res') {
      entry.numExamples = m.numExamples;
      entry.metrics = m.metrics;
      p.evaluations.push({ site, numExamples: m.numExamples, metrics: m.metrics });
      return this.settle(p, site, 'done');
    }
    try {
      if (!this.aggregation) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'fit_res outside a fit phase');
      this.aggregation.impl.addResult(site, m, payload, this.equalWeights ? 1 : m.numExamples);
    } catch (err) {
      this.settle(p, site, 'failed', (err as Error).message);
      throw err instanceof SecAggProtocolError || err instanceof CkksError ? new ProtocolError(CloseCode.PROTOCOL_ERROR, err.message) : err;
    }
    entry.numExamples = m.numExamples;
    entry.metrics = m.metrics;
    p.fitMetrics.push({ numExamples: m.numExamples, metrics: m.metrics });
    p.clipIndicatorSum += m.clipIndicator ?? 0;
    this.settle(p, site, 'done');
  }
}
