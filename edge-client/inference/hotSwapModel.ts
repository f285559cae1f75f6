/**
 * The model the inference service runs, swappable without dropping a request: a new version's
 * onnxruntime session is built, warmed up and smoke-checked on golden inputs (finite outputs of
 * the right shape, rows summing to 1, and optionally an accuracy floor on a local holdout and,
 * for versions the coordinator offers, a largest drop against the version serving) before it
 * becomes current in one assignment. Requests hold the model they started on, so
 * those in flight finish on the old session, which is released when the last one returns. A
 * version that fails its checks never serves: the current one keeps going.
 */
import { buildOnnxModel } from '../../models/onnxModel.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import { SeededRng } from '../../shared/random/seededRng.js';
import type { Dataset } from '../data/dataset.js';
import { FedmedError } from '../../shared/errors.js';
import { LocalAccuracyError, ModelCheckError } from './modelCheckError.js';
import { OnnxInferenceSession, type InferenceOutput, type InferenceSessionOptions } from './onnxInferenceSession.js';

export { LocalAccuracyError, ModelCheckError };

/** Nothing to serve yet: no version was ever deployed to this edge. */
export class NoModelError extends FedmedError {
  constructor() {
    super('NO_MODEL', 'no model version is loaded yet (waiting for the coordinator to deploy one)');
  }
}

/** One loaded version. */
export interface ServingModel {
  versionId: string;
  spec: ModelSpec;
  session: OnnxInferenceSession;
  /** Values per example (product of the input shape). */
  exampleSize: number;
  inputShape: number[];
  classes: number;
  loadedAt: string;
  /** Accuracy on the site's holdout split, when it has one. */
  holdoutAccuracy?: number;
  /** The holdout it was measured on (a case store's test split grows as clinicians label). */
  holdoutData?: Dataset;
}

export interface SwapChecks {
  /** Local labelled data the new version must reach `accuracyFloor` on (its accuracy there is kept with the model). */
  holdout?: Dataset;
  accuracyFloor?: number;
  /** A version offered by the coordinator may lose at most this much holdout accuracy against the one serving. */
  maxAccuracyDrop?: number | null;
}

interface Slot {
  model: ServingModel;
  inflight: number;
  retired: boolean;
}

export class HotSwapModel {
  private slot: Slot | null = null;
  swaps = 0;
  /** The last refused version and why (for /healthz). */
  lastRefusal: { versionId: string; reason: string; at: string } | null = null;
  onSwap: (from: string | null, to: string) => void = () => {};

  constructor(
    private readonly sessionOptions: InferenceSessionOptions = {},
    /** The checks now in force for a model of this spec (a function: the site policy and the local data may change between swaps). */
    private readonly checks: SwapChecks | ((spec: ModelSpec) => SwapChecks) = {},
  ) {}

  get current(): ServingModel | null {
    return this.slot?.model ?? null;
  }

  /**
   * Builds, warms up and checks `versionId`; switches to it only if every check passes.
   * `relative`: also hold it to the policy's largest accuracy drop against the version serving
   * (for versions the coordinator offers; not for the operator's own rollback).
   */
  async swapTo(versionId: string, spec: ModelSpec, params: Float32Array, o: { relative?: boolean } = {}): Promise<ServingModel> {
    let model: ServingModel;
    try {
      const checks = typeof this.checks === 'function' ? this.checks(spec) : this.checks;
      model = await loadChecked(versionId, spec, params, this.sessionOptions, checks);
      const drop = checks.maxAccuracyDrop;
      if (o.relative && drop !== null && drop !== undefined && model.holdoutAccuracy !== undefined) {
        const serving = this.slot?.model;
        let servingAccuracy: number | undefined;
        try {
          servingAccuracy = serving ? await this.servingAccuracy(checks.holdout) : undefined;
        } catch (err) {
          await model.session.release();
          throw err;
        }
        // (1e-9: accuracies are fractions k/n; a drop of exactly the tolerance passes.)
        if (serving && servingAccuracy !== undefined && servingAccuracy - model.holdoutAccuracy > drop + 1e-9) {
          await model.session.release();
          const ids = `version ${versionId.slice(0, 12)}`;
          const kept = `version ${serving.versionId.slice(0, 12)} keeps serving`;
          // The coordinator is told the rule and the version kept, never the figures (they describe the local data).
          throw new LocalAccuracyError(
            `${ids}: holdout accuracy ${model.holdoutAccuracy.toFixed(4)} is more than ${drop} below the serving version's ${servingAccuracy.toFixed(4)} (site policy deployment.maxAccuracyDrop); ${kept}`,
            `holdout accuracy more than ${drop} below the serving version ${serving.versionId.slice(0, 12)}'s on this site's local test data (site policy deployment.maxAccuracyDrop; the figures stay at the site); ${kept}`,
          );
        }
      }
    } catch (err) {
      this.lastRefusal = { versionId, reason: (err as Error).message, at: new Date().toISOString() };
      throw err;
    }
    const old = this.slot;
    this.slot = { model, inflight: 0, retired: false };
    if (old) {
      old.retired = true;
      if (old.inflight === 0) void old.model.session.release();
      this.swaps++;
    }
    this.onSwap(old?.model.versionId ?? null, versionId);
    return model;
  }

  /**
   * The serving version's holdout accuracy: as measured when it was loaded, or measured now
   * (e.g. it was loaded while the site policy had no accuracy rules) and kept with it.
   */
  private async servingAccuracy(holdout: Dataset | undefined): Promise<number | undefined> {
    const slot = this.slot;
    if (!slot) return undefined;
    if (slot.model.holdoutAccuracy !== undefined && (slot.model.holdoutData === holdout || !holdout)) return slot.model.holdoutAccuracy;
    if (!holdout || holdout.y.length === 0) return undefined;
    slot.inflight++;
    try {
      slot.model.holdoutData = holdout;
      return (slot.model.holdoutAccuracy = await holdoutAccuracy(slot.model.session, holdout, slot.model.exampleSize));
    } finally {
      if (--slot.inflight === 0 && slot.retired) void slot.model.session.release();
    }
  }

  /** Runs a batch on the current model; the model is held until the run returns. */
  async run(input: Float32Array, batch: number): Promise<InferenceOutput & { model: ServingModel }> {
    const slot = this.slot;
    if (!slot) throw new NoModelError();
    slot.inflight++;
    try {
      const out = await slot.model.session.run(input, batch);
      return { ...out, model: slot.model };
    } finally {
      if (--slot.inflight === 0 && slot.retired) void slot.model.session.release();
    }
  }

  async close(): Promise<void> {
    const s = this.slot;
    this.slot = null;
    if (s) await s.model.session.release();
  }
}

/** Golden inputs: zeros, mid-grey, and seeded uniform noise in [0, 1). */
function goldenInputs(exampleSize: number): Float32Array {
  const x = new Float32Array(exampleSize * 4);
  x.fill(0.5, exampleSize, 2 * exampleSize);
  const rng = new SeededRng(7);
  for (let i = 2 * exampleSize; i < x.length; i++) x[i] = rng.next();
  return x;
}

async function loadChecked(versionId: string, spec: ModelSpec, params: Float32Array, options: InferenceSessionOptions, checks: SwapChecks): Promise<ServingModel> {
  const short = versionId.slice(0, 12);
  let session: OnnxInferenceSession;
  try {
    session = await OnnxInferenceSession.create(buildOnnxModel(spec, params), { log: () => {}, ...options }, `version ${short}`);
  } catch (err) {
    throw new ModelCheckError(`version ${short}: the ONNX model does not load: ${(err as Error).message}`);
  }
  try {
    const inputShape = session.inputShape;
    const exampleSize = inputShape.reduce((a, b) => a * b, 1);
    const golden = goldenInputs(exampleSize);
    // Warm-up (first runs allocate and pick kernels), then the smoke check on the last run.
    let out = await session.run(golden, 4);
    out = await session.run(golden, 4);
    if (out.batch !== 4 || out.probabilities.length !== 4 * out.classes || out.classes < 2) throw new ModelCheckError(`version ${short}: output shape [${out.batch}, ${out.classes}] is not [4, classes >= 2]`);
    for (let r = 0; r < 4; r++) {
      let sum = 0;
      for (let c = 0; c < out.classes; c++) {
        const p = out.probabilities[r * out.classes + c];
        if (!Number.isFinite(p)) throw new ModelCheckError(`version ${short}: non-finite output (${p}) on golden input ${r}`);
        sum += p;
      }
      if (Math.abs(sum - 1) > 1e-3) throw new ModelCheckError(`version ${short}: probabilities of golden input ${r} sum to ${sum}, not 1`);
    }
    let accuracy: number | undefined;
    if (checks.holdout && checks.holdout.y.length > 0) {
      accuracy = await holdoutAccuracy(session, checks.holdout, exampleSize);
      if (checks.accuracyFloor !== undefined && accuracy < checks.accuracyFloor) throw new LocalAccuracyError(`version ${short}: holdout accuracy ${accuracy.toFixed(4)} is below the floor ${checks.accuracyFloor}`);
    }
    return { versionId, spec, session, exampleSize, inputShape, classes: out.classes, loadedAt: new Date().toISOString(), ...(accuracy !== undefined ? { holdoutAccuracy: accuracy, holdoutData: checks.holdout } : {}) };
  } catch (err) {
    await session.release();
    throw err;
  }
}

async function holdoutAccuracy(session: OnnxInferenceSession, data: Dataset, exampleSize: number): Promise<number> {
  const n = data.y.length;
  let correct = 0;
  for (let start = 0; start < n; start += 256) {
    const b = Math.min(256, n - start);
    const out = await session.run(data.x.subarray(start * exampleSize, (start + b) * exampleSize), b);
    for (let i = 0; i < b; i++) {
      let best = 0;
      for (let c = 1; c < out.classes; c++) if (out.probabilities[i * out.classes + c] > out.probabilities[i * out.classes + best]) best = c;
      if (best === data.y[start + i]) correct++;
    }
  }
  return n === 0 ? 1 : correct / n;
}
