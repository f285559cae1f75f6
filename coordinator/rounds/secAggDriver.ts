/**
 * Drives one SecAgg+ round over the edge gateway: closes each key phase when every expected
 * site answered or its timeout passed (dropping the rest), sends rosters, relays share boxes,
 * collects masked inputs (as `fit_res`), then after the fit phase runs the consistency round
 * and the unmask phase and decodes the aggregate. The protocol logic itself is in
 * shared/secure/secagg/secaggServer.ts.
 */
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import type { SiteCertificate } from '../../shared/secure/trust/certificates.js';
import { decodeSum } from '../../shared/secure/secagg/fixedPoint.js';
import { SecAggAbort, SecAggProtocolError } from '../../shared/secure/secagg/secaggErrors.js';
import type { SecAggConfig, SecAggRoundParams } from '../../shared/secure/secagg/secaggParams.js';
import { SecAggServer, type VectorObserver } from '../../shared/secure/secagg/secaggServer.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import { AggregationAbort, type FitAggregation, type FitAggregationHooks } from './fitAggregation.js';
import { siteText } from './siteText.js';
import type { PhaseStatus } from '../events/federationEvents.js';
import type { SecAggStage, StageDetail } from '../events/roundEvents.js';

export interface SecAggDriverOptions {
  experiment: string;
  round: number;
  sites: string[];
  params: SecAggRoundParams;
  config: SecAggConfig;
  certificate: (site: string) => SiteCertificate;
  /** Model parameters (the vector carries one more word: the weight). */
  size: number;
  phaseTimeoutMs: number;
  hooks: FitAggregationHooks;
  observe?: VectorObserver;
}

export class SecAggDriver implements FitAggregation {
  readonly security = 'secagg' as const;
  readonly revealsUpdates = false;
  private readonly server: SecAggServer;
  private readonly gone = new Set<string>();
  private abort: SecAggAbort | null = null;
  private timer: NodeJS.Timeout | null = null;
  private unmaskDone: (() => void) | null = null;
  private readonly t0 = performance.now();
  private readonly timings: Record<string, number> = {};
  /** Each site's SecAgg+ stage in progress (reported through hooks.stage for the event feed). */
  private readonly stages = new Map<string, SecAggStage>();

  constructor(private readonly o: SecAggDriverOptions) {
    this.server = new SecAggServer({ experiment: o.experiment, round: o.round, params: o.params, config: o.config, sites: o.sites, certificate: o.certificate, vectorLength: o.size + 1, observe: o.observe });
    this.armTimer();
  }

  fitInsFields() {
    return { security: this.o.params };
  }

  private waiting(): string[] {
    return this.server.waitingFor().filter((s) => !this.gone.has(s));
  }

  private armTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    const phase = this.server.phase;
    if (phase !== 'keys' && phase !== 'shares' && phase !== 'consistency' && phase !== 'unmask') return;
    this.timer = setTimeout(() => {
      for (const site of this.waiting()) {
        this.gone.add(site);
        this.server.dropped(site);
        const reason = `sent no SecAgg+ ${phase} message within ${this.o.phaseTimeoutMs / 1000} s`;
        this.endStage(site, 'dropped', { reason });
        this.o.hooks.drop(site, reason);
      }
      this.advance();
    }, this.o.phaseTimeoutMs);
    this.timer.unref();
  }

  /** Closes the current key phase once nobody is missing; a failure aborts the round. */
  private advance(): void {
    try {
      if (this.abort) return;
      const phase = this.server.phase;
      if (this.waiting().length > 0) return;
      if (phase === 'keys') {
        const rosters = this.server.closeKeys();
        this.timings.secaggKeysMs = performance.now() - this.t0;
        this.broadcast(rosters);
      } else if (phase === 'shares') {
        const relays = this.server.closeShares();
        this.timings.secaggSharesMs = performance.now() - this.t0;
        for (const site of relays.keys()) if (!this.gone.has(site)) this.stage(site, 'masked_input', 'started');
        this.broadcast(relays);
      } else if (phase === 'consistency') {
        const requests = this.server.closeConsistency();
        this.timings.secaggConsistencyMs = performance.now() - this.t0;
        this.broadcast(requests);
        for (const s of this.gone) this.server.dropped(s);
        this.armTimer();
        return this.advance();
      } else if (phase === 'unmask') {
        this.unmaskDone?.();
        return;
      } else return;
      this.armTimer();
    } catch (err) {
      if (!(err instanceof SecAggAbort || err instanceof SecAggProtocolError || (err as { code?: string }).code === 'SECAGG_CONFIG')) throw err;
      this.abort = new SecAggAbort((err as Error).message);
      for (const site of [...this.stages.keys()]) this.endStage(site, 'failed', { reason: `secure aggregation aborted: ${this.abort.message}` });
      if (this.timer) clearTimeout(this.timer);
      this.unmaskDone?.();
      this.o.hooks.endPhase();
    }
  }

  private broadcast(messages: Map<string, Message>): void {
    for (const [site, m] of messages) {
      if (this.gone.has(site)) continue;
      this.o.hooks.send(site, m).catch((err: Error) => this.o.hooks.drop(site, `could not send ${m.type}: ${err.message}`));
    }
  }

  addResult(site: string, m: MessageOf<'fit_res'>, payload: Uint8Array): void {
    try {
      siteMisbehaviour(() => this.server.receiveMasked(site, m, payload));
    } catch (err) {
      // (the engine counts the refused update itself: no `refused` here)
      this.endStage(site, 'failed', { reason: (err as Error).message });
      throw err;
    }
    this.stage(site, 'masked_input', 'done');
  }

  onProtocolMessage(site: string, m: Message): void {
    try {
      siteMisbehaviour(() => this.receive(site, m));
    } catch (err) {
      if (err instanceof ProtocolError) this.endStage(site, 'failed', { reason: err.message, refused: 'protocol_violation' }, 'key_exchange');
      throw err;
    }
  }

  /** Reports a site's stage (hooks.stage) and keeps track of the one it is in. */
  private stage(site: string, stage: SecAggStage, status: PhaseStatus, detail?: StageDetail): void {
    if (status === 'started') this.stages.set(site, stage);
    else if (this.stages.get(site) === stage) this.stages.delete(site);
    this.o.hooks.stage?.(site, stage, status, detail);
  }

  /** Ends the stage a site is in (or reports `fallback` as ended when it is in none). */
  private endStage(site: string, status: Exclude<PhaseStatus, 'started'>, detail: StageDetail, fallback?: SecAggStage): void {
    const stage = this.stages.get(site) ?? fallback;
    if (stage) this.stage(site, stage, status, detail);
  }

  private receive(site: string, m: Message): void {
    if (m.type === 'secagg_keys') {
      this.server.receiveKeys(site, m);
      this.stage(site, 'key_exchange', 'started');
    } else if (m.type === 'secagg_shares') {
      this.server.receiveShares(site, m);
      this.stage(site, 'key_exchange', 'done');
    } else if (m.type === 'secagg_consistency_sig') this.server.receiveConsistency(site, m);
    else if (m.type === 'secagg_refused') {
      if (m.session !== this.o.params.session) return;
      const reason = `refused SecAgg+: ${siteText(m.reason)}`;
      this.endStage(site, 'failed', { reason, refused: 'secagg_refused' }, 'key_exchange');
      this.o.hooks.drop(site, reason);
      return this.siteGone(site);
    }
    else if (m.type === 'secagg_unmask_res') {
      this.server.receiveUnmask(site, m);
      this.stage(site, 'unmask', 'done');
    }
    else throw new SecAggProtocolError(`unexpected ${m.type} from ${site}`, site);
    this.advance();
  }

  siteGone(site: string): void {
    if (this.gone.has(site)) return;
    this.endStage(site, 'dropped', { reason: 'left the round' });
    this.gone.add(site);
    this.server.dropped(site);
    this.advance();
  }

  async finish(): Promise<AggregatedFit> {
    try {
      return await this.unmaskedSum();
    } catch (err) {
      throw err instanceof SecAggAbort ? new AggregationAbort(err.message) : err;
    } finally {
      if (this.timer) clearTimeout(this.timer);
    }
  }

  /** Consistency round and unmasking after the fit phase; the decoded weighted sum. */
  private async unmaskedSum(): Promise<AggregatedFit> {
    if (this.abort) throw this.abort;
    if (this.server.phase !== 'masked') throw new SecAggAbort(`the fit phase closed during SecAgg+ phase "${this.server.phase}"`);
    const t = performance.now();
    const survivorSets = this.server.closeMasked();
    for (const site of survivorSets.keys()) if (!this.gone.has(site)) this.stage(site, 'unmask', 'started');
    const done = new Promise<void>((resolve) => (this.unmaskDone = resolve));
    this.broadcast(survivorSets);
    for (const s of this.gone) this.server.dropped(s);
    this.armTimer();
    this.advance();
    await done;
    if (this.abort) throw this.abort;
    const sum = await this.server.finish();
    this.timings.secaggUnmaskMs = performance.now() - t;
    const { weightedSum, totalWeight } = decodeSum(sum, this.o.params);
    return { weightedDeltaSum: weightedSum, totalExamples: totalWeight, sites: this.server.contributors().length };
  }

  failure(): string | null {
    return this.abort?.message ?? null;
  }

  describe() {
    return { threshold: this.server.threshold, contributors: this.server.contributors().length, ...this.timings };
  }
}

/** A site's protocol violation (SecAggProtocolError) is reported as the ProtocolError that closes its connection. */
function siteMisbehaviour(f: () => void): void {
  try {
    f();
  } catch (err) {
    throw err instanceof SecAggProtocolError ? new ProtocolError(CloseCode.PROTOCOL_ERROR, err.message) : err;
  }
}
