/**
 * A hospital's edge node: the federation client (training, evaluation, OTA) and, when asked,
 * the inference service, sharing one versions store. On start the last good version serves
 * at once from disk (offline autonomy: the coordinator need not be reachable); each verified
 * OTA version is hot-swapped in; a rollback done by hand (`fedmed edge rollback`, which
 * rewrites STATE_DIR/versions/active.json) is noticed and applied within a second. The site
 * policy's deployment rules (manual deployment, accuracy floor and largest drop — by default an
 * offered version may score at most 0.05 below the serving one on the local test split) apply
 * at each swap; without a test split the accuracy rules cannot apply, which the start log says.
 *
 * With a case store (`cases`), DICOM instances that arrive (C-STORE, PACS pull, import, inference
 * requests) become de-identified cases, clinicians label them through the inference service,
 * and rounds train on the labelled cases that match the round model's input spec.
 */
import { unwatchFile, watchFile } from 'node:fs';
import { join } from 'node:path';
import type { DatasetSplits } from './data/dataset.js';
import { EdgeClient, type EdgeClientOptions } from './federation/edgeClient.js';
import { HotSwapModel, type SwapChecks } from './inference/hotSwapModel.js';
import { isLoopbackHost, startInferenceService, type InferenceServiceOptions, type RunningInferenceService } from './inference/inferenceService.js';
import type { InferenceSessionOptions } from './inference/onnxInferenceSession.js';
import { ServiceMetrics } from './inference/serviceMetrics.js';
import { VersionStore } from './ota/versionStore.js';
import { EdgeState } from './federation/edgeState.js';
import type { SitePolicy } from './policy/sitePolicy.js';
import { numClassesOf, type ModelSpec } from '../shared/model/modelSpec.js';
import { defaultInputSpec, type InputSpec } from '../shared/model/inputSpec.js';
import { fixedData, type LocalData } from './data/localData.js';
import { CaseStore } from './cases/caseStore.js';
import { caseData } from './cases/caseData.js';
import { DecodePool } from './dicom/decodePool.js';
import { DicomIngest } from './dicom/dicomIngest.js';
import { DicomIntake, type DicomIntakeOptions } from './dicom/dicomIntake.js';
import { modelInput, type ModelInput } from './dicom/modelInput.js';

export interface EdgeNodeOptions extends Omit<EdgeClientOptions, 'ota' | 'data'> {
  /** A data set loaded at start, or 'cases': the labelled cases of the case store. */
  data: DatasetSplits | 'cases';
  /** The case store and its DICOM sources (required with data 'cases'). */
  cases?: CasesOptions;
  /** Serve inference on this port (absent: no inference service). */
  serve?: { host?: string; port: number; batching?: InferenceServiceOptions['batching']; bodyLimitBytes?: number } & Pick<InferenceServiceOptions, 'tokens' | 'auth' | 'tls' | 'insecure'>;
  inference?: InferenceSessionOptions;
  /** Versions kept on disk (default 3). */
  keepVersions?: number;
}

export interface CasesOptions extends DicomIntakeOptions {
  /** Keep each instance's original DICOM beside its case (default: no). */
  keepOriginals?: boolean;
  /** How instances are preprocessed until a model with an input spec serves (default: 28×28 grey, window from the header). */
  inputSpec?: InputSpec;
  /** Decoder worker threads (default min(2, cores)). */
  decodeWorkers?: number;
}

export class EdgeNode {
  readonly client: EdgeClient;
  readonly store: VersionStore;
  readonly model: HotSwapModel;
  readonly metrics = new ServiceMetrics();
  service: RunningInferenceService | null = null;
  /** The case store, with a DICOM front (`cases`); open after start(). */
  cases: CaseStore | null = null;
  dicom: DicomIntake | null = null;
  ingest: DicomIngest | null = null;
  private pool: DecodePool | null = null;
  private caseAudit: NodeJS.Timeout | null = null;
  private readiness: NodeJS.Timeout | null = null;
  private readonly localData: LocalData;
  private readonly log: (event: string, detail?: Record<string, unknown>) => void;

  constructor(private readonly o: EdgeNodeOptions) {
    // One trust for the client and the versions store: a revocation list the client takes
    // applies at once to the stored versions, which are re-verified on every load.
    const trust = new EdgeState(o.stateDir).trust();
    if (o.data === 'cases' && !o.cases) throw new Error('data "cases" needs the case store options (cases)');
    // The case store opens in start(); until then it has no cases to give.
    const cases = (): LocalData => (this.cases ? caseData(this.cases, () => this.model.current?.spec ?? null) : fixedData(caseData.empty()));
    this.localData = o.data === 'cases' ? { splitsFor: (spec) => cases().splitsFor(spec) } : fixedData(o.data);
    this.store = new VersionStore(o.stateDir, o.keepVersions ?? 3, trust);
    // The site policy's deployment rules, as they stand at each swap.
    const checks = (spec: ModelSpec): SwapChecks => {
      const d = this.client.rules.current().deployment;
      return d.accuracyFloor > 0 || d.maxAccuracyDrop !== null ? { holdout: this.localData.splitsFor(spec).test, accuracyFloor: d.accuracyFloor, maxAccuracyDrop: d.maxAccuracyDrop } : {};
    };
    this.model = new HotSwapModel({ intraOpNumThreads: 1, ...o.inference }, checks);
    this.client = new EdgeClient({
      ...o,
      data: this.localData,
      trust,
      ota: {
        store: this.store,
        install: async (v, how) => void (await this.model.swapTo(v.signed.manifest.id, v.spec, v.params, { relative: how === 'offer' })),
        hold: () => {
          let mode: string;
          try {
            mode = this.client.rules.current().deployment.mode;
          } catch (err) {
            return `not deployed: ${(err as Error).message}`;
          }
          return mode === 'manual' ? 'stored and verified; this site deploys by hand (site policy deployment.mode = "manual"): "fedmed edge activate" makes it serve' : null;
        },
        serving: () => this.model.current?.versionId ?? null,
        onBytes: (n) => this.metrics.otaBytes.inc(n),
      },
    });
    const log = o.log ?? ((event, detail) => console.log(JSON.stringify({ time: new Date().toISOString(), site: this.client.site, event, ...detail })));
    // (a model swapped in the inference service is an audit entry too: edge-client/audit/)
    this.log = (event, detail) => {
      log(event, detail);
      this.client.auditSources.observe(event, detail);
    };
    this.model.onSwap = (from, to) => {
      if (from) this.metrics.swaps.inc();
      const m = this.model.current!;
      this.metrics.setModel(to, m.session.provider);
      this.log('model_swapped', { from, to, provider: m.session.provider });
      this.reportReadiness(); // (another input spec: other cases match it)
    };
    this.client.on('ready', () => this.metrics.coordinatorConnected.set(1));
    this.client.on('disconnected', () => this.metrics.coordinatorConnected.set(0));
  }

  async start(): Promise<void> {
    this.logHoldoutRules();
    // What a crash mid-write left behind (temporary files, half-stored versions): never state, removed before anything is read or written.
    const leftovers = [...new EdgeState(this.o.stateDir, this.o.modelCacheDir).removeStaleTempFiles(), ...this.store.removeCrashLeftovers().map((f) => join('versions', f))];
    if (leftovers.length > 0) this.log('crash_leftovers_removed', { files: leftovers });
    await this.loadLastGood();
    if (this.o.cases) await this.openCases(this.o.cases);
    if (this.o.serve) {
      this.service = await startInferenceService({
        model: this.model,
        host: this.o.serve.host,
        port: this.o.serve.port,
        batching: this.o.serve.batching,
        bodyLimitBytes: this.o.serve.bodyLimitBytes,
        metrics: this.metrics,
        coordinator: () => ({ connected: this.client.connectedSince !== null, since: this.client.connectedSince, url: this.client.coordinatorUrl }),
        tokens: this.o.serve.tokens,
        auth: this.o.serve.auth,
        tls: this.o.serve.tls,
        insecure: this.o.serve.insecure,
        ...(this.cases && this.ingest ? { cases: { store: this.cases, ingest: (p10: Uint8Array) => this.ingest!.ingest(p10, { kind: 'api' }), onLabel: () => this.auditCaseChanges() } } : {}),
      });
      if (!this.o.serve.tls && this.o.serve.insecure && !isLoopbackHost(this.o.serve.host ?? '127.0.0.1')) this.log('inference_insecure', { warning: `plain HTTP on ${this.o.serve.host} (--serve-insecure): requests, answers and access tokens cross the network unencrypted` });
      if (this.o.serve.auth === 'none') this.log('inference_unauthenticated', { warning: 'the inference service answers without access tokens (--serve-no-auth, loopback only)' });
      this.log('inference_listening', { url: this.service.url, version: this.model.current?.versionId ?? null });
    }
    // A rollback or an activation by hand (both rewrite active.json) is applied within a second.
    watchFile(join(this.store.dir, 'active.json'), { interval: 500 }, () => this.client.ota.applyLocalRollback(() => this.model.current?.versionId ?? null));
    await this.dicom?.start();
    // (re-read every 2 s: labels arrive, and the policy that shapes what is told may change)
    this.reportReadiness();
    this.readiness = setInterval(() => this.reportReadiness(), 2000).unref();
    this.client.start();
  }

  async stop(): Promise<void> {
    unwatchFile(join(this.store.dir, 'active.json'));
    await this.dicom?.stop();
    if (this.caseAudit) clearInterval(this.caseAudit);
    if (this.readiness) clearInterval(this.readiness);
    this.auditCaseChanges();
    await this.client.stop();
    await this.service?.close();
    await this.pool?.close();
    this.cases?.close();
    await this.model.close();
  }

  /** The input spec instances are preprocessed for now: the serving model's, or the configured default. */
  private ingestInput(o: CasesOptions): ModelInput {
    const spec: Pick<ModelSpec, 'inputShape' | 'input'> | undefined = this.model.current?.spec;
    if (spec) return modelInput(spec);
    const input = o.inputSpec ?? defaultInputSpec([28, 28, 1]);
    return modelInput({ inputShape: [...input.size, input.channels], input });
  }

  /**
   * The labelled examples this site would train on now, for the coordinator's view of who is
   * ready (the client sends them as the policy lets out, and only when they change): the case
   * store's labelled cases of the serving model's input spec, or the sizes of the data set given.
   */
  private reportReadiness(): void {
    if (this.o.data !== 'cases') {
      const d = this.o.data;
      return this.client.dataStatus.update({ train: d.train.y.length, validation: d.val?.y.length ?? 0, test: d.test?.y.length ?? 0 });
    }
    if (!this.cases || !this.o.cases) return;
    const spec = this.model.current?.spec;
    const n = this.cases.labelledCounts(this.ingestInput(this.o.cases).hash, spec ? numClassesOf(spec) : undefined);
    this.client.dataStatus.update({ train: n.train, validation: n.val, test: n.test });
  }

  /**
   * Label changes and deletions go into the audit log from the case store's own record of them
   * (made in the same transaction), so changes made with the CLI while the edge ran, or while it
   * was down, are audited too — once each.
   */
  private auditCaseChanges(): void {
    const cases = this.cases;
    if (!cases) return;
    for (let batch = cases.unaudited(); batch.length > 0; batch = cases.unaudited()) {
      for (const c of batch) {
        if (c.kind === 'label') this.log('case_labelled', { case: c.case, label: c.change.label, previous: c.change.previous, by: c.change.by, via: c.change.via, token: c.change.token, at: c.change.at });
        else this.log('cases_deleted', { count: c.count, before: c.before, by: c.by, at: c.at });
      }
      cases.audited(batch[batch.length - 1].seq);
    }
  }

  private async openCases(o: CasesOptions): Promise<void> {
    this.cases = await CaseStore.open(this.o.stateDir, { keepOriginals: o.keepOriginals });
    this.pool = new DecodePool({ size: o.decodeWorkers });
    this.ingest = new DicomIngest({ cases: this.cases, pool: this.pool, modelInput: () => this.ingestInput(o), keepOriginals: o.keepOriginals ?? false, log: this.log });
    this.dicom = new DicomIntake({ ...o, stateDir: this.o.stateDir, ingest: this.ingest, cases: this.cases, model: this.model, log: this.log });
    this.auditCaseChanges();
    this.caseAudit = setInterval(() => this.auditCaseChanges(), 2000).unref();
    const s = this.cases.stats();
    this.log('cases_opened', { cases: s.cases, labelled: s.labelled, keepOriginals: o.keepOriginals ?? false, retentionDays: o.retentionDays ?? null });
  }

  /** The local accuracy rules need a holdout (test) split: without one they cannot apply, said once at start. */
  private logHoldoutRules(): void {
    let d: SitePolicy['deployment'];
    try {
      d = this.client.rules.current().deployment;
    } catch {
      return; // an invalid policy file is reported where rounds are refused
    }
    const rules = [d.maxAccuracyDrop !== null ? `largest accuracy drop against the serving version ${d.maxAccuracyDrop} (deployment.maxAccuracyDrop)` : '', d.accuracyFloor > 0 ? `accuracy floor ${d.accuracyFloor} (deployment.accuracyFloor)` : ''].filter(Boolean);
    if (rules.length === 0) return;
    const holdout = this.o.data === 'cases' ? 1 : (this.o.data.test?.y.length ?? 0); // (cases: the labelled test split of each version's input spec)
    if (holdout > 0) this.log('deployment_checks', { holdoutExamples: holdout, maxAccuracyDrop: d.maxAccuracyDrop, accuracyFloor: d.accuracyFloor });
    else this.log('deployment_checks_unavailable', { warning: `the local data has no test (holdout) split, so the site policy's ${rules.join(' and ')} cannot apply: offered versions get the model checks only` });
  }

  /** Serves the active version from disk, or the newest earlier one that still passes its checks. */
  private async loadLastGood(): Promise<void> {
    const candidates = [...new Set([this.store.active, ...this.store.history.slice().reverse()].filter((x): x is string => !!x))];
    for (const id of candidates) {
      try {
        const v = this.store.load(id);
        await this.model.swapTo(id, v.spec, v.params);
        if (id !== this.store.active) this.store.setActive(id, v.signed.manifest.release);
        return;
      } catch (err) {
        this.log('stored_version_unusable', { version: id, reason: (err as Error).message });
      }
    }
  }
}
