/**
 * The site's DICOM intake: what feeds the case store while the edge runs — a C-STORE SCP for
 * modalities and the PACS to push to, a DICOMweb pull from the PACS, inference of each new case
 * on arrival (optional), and the retention limit. Every source hands its instances to one
 * DicomIngest; a busy decoder answers "out of resources" rather than queueing without bound.
 */
import { DynamicBatcher, DEFAULT_BATCHING } from '../inference/dynamicBatcher.js';
import type { HotSwapModel } from '../inference/hotSwapModel.js';
import type { CaseStore } from '../cases/caseStore.js';
import type { DicomIngest, IngestedCase } from './dicomIngest.js';
import type { InstanceSource } from './dicomTypes.js';
import { modelInput } from './modelInput.js';
import { PacsPull } from './pacsPull.js';
import { startStoreScp } from './storeScp.js';

export interface DicomIntakeOptions {
  scp?: { host: string; port: number; aet: string; allowedAets: string[] | null };
  pacs?: { url: string; query: Record<string, string>; intervalMs: number };
  /** Infer each new case with the serving model and keep the answer with it. */
  inferOnArrival?: boolean;
  /** Delete cases older than this many days (checked at start and hourly). */
  retentionDays?: number | null;
}

type Log = (event: string, detail?: Record<string, unknown>) => void;

export class DicomIntake {
  private scp: { port: number; close(): Promise<void> } | null = null;
  private pacs: PacsPull | null = null;
  private retention: NodeJS.Timeout | null = null;
  private batcher: DynamicBatcher | null = null;

  constructor(
    private readonly o: DicomIntakeOptions & { stateDir: string; ingest: DicomIngest; cases: CaseStore; model: HotSwapModel; log: Log },
  ) {}

  /** The SCP's port (when it listens). */
  get scpPort(): number | null {
    return this.scp?.port ?? null;
  }

  async start(): Promise<void> {
    const { ingest, log } = this.o;
    if (this.o.inferOnArrival) {
      this.batcher = new DynamicBatcher(this.o.model, DEFAULT_BATCHING);
      ingest.onCase = (c, source) => {
        if (!c.duplicate && source.kind !== 'api') void this.inferCase(c);
      };
    }
    this.sweepRetention();
    if (this.o.retentionDays) this.retention = setInterval(() => this.sweepRetention(), 3600_000).unref();
    const receive = async (p10: Uint8Array, source: InstanceSource): Promise<void> => void (await ingest.ingest(p10, source));
    if (this.o.scp) {
      const s = this.o.scp;
      this.scp = await startStoreScp({ ...s, onInstance: receive, log: { info: (obj, msg) => log('dicom_scp', { ...obj, message: msg }), warn: (obj, msg) => log('dicom_scp_warning', { ...obj, message: msg }) } });
      log('dicom_listening', { host: s.host, port: this.scp.port, aet: s.aet, allowedAets: s.allowedAets ?? 'any' });
    }
    if (this.o.pacs) {
      const p = this.o.pacs;
      this.pacs = new PacsPull({ baseUrl: p.url, query: p.query, intervalMs: p.intervalMs, stateFile: `${this.o.stateDir}/cases/pacs-pull.json`, rememberAs: (uid) => this.o.cases.pseudonyms.pseudonym('sop', uid), onInstance: receive, log: { info: (obj, msg) => log('pacs_pull', { ...obj, message: msg }), warn: (obj, msg) => log('pacs_pull_warning', { ...obj, message: msg }) } });
      this.pacs.start();
      log('pacs_pull_started', { url: p.url, intervalSeconds: p.intervalMs / 1000 });
    }
  }

  async stop(): Promise<void> {
    if (this.retention) clearInterval(this.retention);
    await this.pacs?.stop(); // (a pull under way ends before the case store closes)
    await this.scp?.close();
  }

  private async inferCase(c: IngestedCase): Promise<void> {
    const model = this.o.model.current;
    if (!model || modelInput(model.spec).hash !== c.modelInput.hash) return; // no model for this input yet: the case waits for a request
    try {
      const a = await this.batcher!.infer(c.input);
      const probabilities = Array.from(a.probabilities);
      const best = probabilities.indexOf(Math.max(...probabilities));
      this.o.cases.setInference(c.id, { version: a.model.versionId, provider: a.model.session.provider, probabilities, predictedClass: best, at: new Date().toISOString() });
      this.o.log('case_inferred', { case: c.id, version: a.model.versionId, predictedClass: best });
    } catch (err) {
      this.o.log('case_inference_failed', { case: c.id, reason: (err as Error).message });
    }
  }

  private sweepRetention(): void {
    const days = this.o.retentionDays;
    if (!days) return;
    const before = new Date(Date.now() - days * 86_400_000);
    this.o.cases.deleteBefore(before, `retention (${days} days)`); // (logged and audited from the case store's record)
  }
}
