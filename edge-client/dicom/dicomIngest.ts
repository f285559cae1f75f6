/**
 * One path for every DICOM instance the edge receives (C-STORE, PACS pull, folder import, an
 * inference request): decode and preprocess in a worker, pseudonymise, store as a case. What is
 * logged is the case's pseudonym and non-identifying facts, never a UID, name or ID. The
 * decoder's pixel digest travels with the UIDs and is stored only keyed, as the case's pixelHash.
 */
import type { CaseStore } from '../cases/caseStore.js';
import type { DecodePool } from './decodePool.js';
import type { InstanceMetadata, InstanceSource } from './dicomTypes.js';
import type { ModelInput } from './modelInput.js';

export interface IngestedCase {
  id: string;
  /** The same SOP instance was received before: the stored case is kept as it is. */
  duplicate: boolean;
  metadata: InstanceMetadata;
  /** This instance's keyed pixel hash (Pseudonymiser.pixelHash); a duplicate's stored case keeps its own. */
  pixelHash: string | null;
  /** The preprocessed model input of this instance. */
  input: Float32Array;
  modelInput: ModelInput;
}

export interface DicomIngestOptions {
  cases: CaseStore;
  pool: DecodePool;
  /** The input spec new instances are preprocessed for (the serving model's). */
  modelInput: () => ModelInput;
  /** Keep the received DICOM with the case (site policy). */
  keepOriginals: boolean;
  log: (event: string, detail?: Record<string, unknown>) => void;
}

export class DicomIngest {
  /** Called for each stored case (new or duplicate), after it is stored. */
  onCase: (c: IngestedCase, source: InstanceSource) => void = () => {};

  constructor(private readonly o: DicomIngestOptions) {}

  async ingest(p10: Uint8Array, source: InstanceSource): Promise<IngestedCase> {
    const input = this.o.modelInput();
    const original = this.o.keepOriginals ? new Uint8Array(p10) : undefined; // the pool may take p10's memory
    const started = performance.now();
    const r = await this.o.pool.decodeAndPreprocess(p10, input.spec);
    const pseudonyms = this.o.cases.pseudonyms.of(r.decoded.uids);
    const stored = this.o.cases.put(pseudonyms, { metadata: r.decoded.metadata, source: source, input: r.input, inputShape: input.shape, inputSpecHash: input.hash, original });
    const m = r.decoded.metadata;
    this.o.log('case_received', { case: stored.id, duplicate: stored.duplicate, source: source.kind, modality: m.modality, transferSyntax: m.transferSyntax, rows: m.rows, columns: m.columns, ms: Math.round(performance.now() - started) });
    const c: IngestedCase = { id: stored.id, duplicate: stored.duplicate, metadata: m, pixelHash: pseudonyms.pixels ?? null, input: r.input, modelInput: input };
    this.onCase(c, source);
    return c;
  }
}
