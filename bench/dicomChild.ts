/**
 * Child process of the DICOM benchmark: the edge's DICOM intake wired as `fedmed edge start`
 * wires it (edgeNode.ts openCases + dicomIntake.ts): CaseStore.open(STATE_DIR) → DecodePool →
 * DicomIngest → DicomIntake with the C-STORE SCP on 127.0.0.1 (port 0, AE title FEDMED, any
 * caller). With `infer`, the same process also serves cnn-28 through the real inference service
 * (HotSwapModel + dynamic batching + fastify, cpu, 1 intra-op thread, no auth, loopback), as the
 * edge does, and the intake preprocesses for that model's input spec.
 *   node dist/bench/dicomChild.js '{"stateDir": "...", "decodeWorkers": 2, "decodePriority": 19, "infer": true}'
 * Says "ready:{"scpPort":…,"inferPort":…}" once listening; answers "stats" with
 * "stats:{"cases":…,"received":…,"failed":…,"maxIngestMs":…}"; exits on disconnect.
 */
import { zooModel } from '../models/zoo.js';
import { CaseStore } from '../edge-client/cases/caseStore.js';
import { DecodePool } from '../edge-client/dicom/decodePool.js';
import { DicomIngest } from '../edge-client/dicom/dicomIngest.js';
import { DicomIntake } from '../edge-client/dicom/dicomIntake.js';
import { modelInput } from '../edge-client/dicom/modelInput.js';
import { startStoreScp } from '../edge-client/dicom/storeScp.js';
import { HotSwapModel } from '../edge-client/inference/hotSwapModel.js';
import { startInferenceService, type RunningInferenceService } from '../edge-client/inference/inferenceService.js';
import { initParams } from '../shared/model/initParams.js';
import { modelVersionId } from '../shared/model/modelHash.js';

interface ChildConfig {
  stateDir: string;
  decodeWorkers?: number;
  /** Passed to DecodePool as `priority` when given (the workers' nice value). */
  decodePriority?: number;
  infer?: boolean;
  /**
   * Profiling only: 'scp' answers each C-STORE at once (onInstance does nothing), 'decode' also
   * decodes and preprocesses in the pool (no case store write); default 'full' (the edge's path).
   */
  stage?: 'scp' | 'decode' | 'full';
}

const cfg = JSON.parse(process.argv[2]) as ChildConfig;
const spec = zooModel('cnn-28', { numClasses: 2 });
const model = new HotSwapModel({ providers: ['cpu'], intraOpNumThreads: 1 });
const params = initParams(spec, 1);
await model.swapTo(modelVersionId(spec, params), spec, params);

let received = 0;
let failed = 0;
let maxIngestMs = 0;
const log = (event: string, detail?: Record<string, unknown>): void => {
  if (event === 'case_received') {
    received++;
    maxIngestMs = Math.max(maxIngestMs, Number(detail?.ms ?? 0));
  } else if (event === 'dicom_scp_warning') failed++;
};

const cases = await CaseStore.open(cfg.stateDir);
const pool = new DecodePool({ size: cfg.decodeWorkers, ...(cfg.decodePriority !== undefined ? { priority: cfg.decodePriority } : {}) });
const ingest = new DicomIngest({ cases, pool, modelInput: () => modelInput(model.current?.spec ?? spec), keepOriginals: false, log });
const scpOptions = { host: '127.0.0.1', port: 0, aet: 'FEDMED', allowedAets: null };
const intake = new DicomIntake({ stateDir: cfg.stateDir, scp: cfg.stage && cfg.stage !== 'full' ? undefined : scpOptions, ingest, cases, model, log });
await intake.start();
let scpPort = intake.scpPort;
let bare: { close(): Promise<void> } | null = null;
if (cfg.stage === 'scp' || cfg.stage === 'decode') {
  const input = modelInput(spec);
  const onInstance = cfg.stage === 'scp' ? async (): Promise<void> => void received++ : async (p10: Uint8Array): Promise<void> => void (await pool.decodeAndPreprocess(p10, input.spec), received++);
  const scp = await startStoreScp({ ...scpOptions, onInstance, log: { info: () => {}, warn: () => void failed++ } });
  scpPort = scp.port;
  bare = scp;
}
let service: RunningInferenceService | null = null;
if (cfg.infer) service = await startInferenceService({ model, host: '127.0.0.1', port: 0, batching: { maxBatch: 32, maxWaitMs: 1 }, auth: 'none' });

process.on('message', (m) => {
  if (m === 'stats') process.send!(`stats:${JSON.stringify({ cases: cases.stats().cases, received, failed, maxIngestMs })}`);
});
process.on('disconnect', () => {
  void (async () => {
    await intake.stop();
    await bare?.close();
    await service?.close();
    await pool.close();
    cases.close();
    await model.close();
    process.exit(0);
  })();
});
process.send!(`ready:${JSON.stringify({ scpPort, inferPort: service ? Number(new URL(service.url).port) : null })}`);
