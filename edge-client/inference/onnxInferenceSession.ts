/**
 * InferenceBackend: an onnxruntime-node session built from ONNX bytes, trying execution
 * providers in the configured order and reporting which one is in effect and why the others
 * were skipped. A fallback is never silent: each skipped provider is logged with its reason.
 */
import * as ort from 'onnxruntime-node';
import { BackendError, errorMessage, OnnxModelError } from '../../shared/errors.js';
import { ONNX_INPUT_NAME, ONNX_OUTPUT_NAME } from '../../models/onnxModel.js';
import { DEFAULT_PROVIDERS, providerOption, type ProviderConfig, type ProviderName } from './executionProviders.js';

export interface ProviderAttempt {
  provider: ProviderName;
  ok: boolean;
  reason?: string;
}

export interface InferenceSessionOptions extends Partial<ProviderConfig> {
  /** Threads for one inference call (default: onnxruntime's choice, all cores). */
  intraOpNumThreads?: number;
  /** Receives one line per skipped provider. Default: console.warn. */
  log?: (message: string) => void;
}

export interface InferenceOutput {
  /** Row-major [batch, classes]. */
  probabilities: Float32Array;
  batch: number;
  classes: number;
}

// onnxruntime logs a provider that fails to load at "error" level on stderr in its own format;
// we report every failed provider ourselves (with the reason), so keep only fatal messages.
ort.env.logLevel = 'fatal';

export class OnnxInferenceSession {
  private constructor(
    private readonly session: ort.InferenceSession,
    /** The execution provider that created the session. */
    readonly provider: ProviderName,
    /** Every provider tried, in order, with the reason for each that failed. */
    readonly attempts: ProviderAttempt[],
    readonly inputShape: number[],
  ) {}

  static async create(onnxBytes: Uint8Array, options: InferenceSessionOptions = {}, source = 'ONNX model'): Promise<OnnxInferenceSession> {
    const providers = options.providers ?? [...DEFAULT_PROVIDERS];
    const log = options.log ?? ((m: string) => console.warn(m));
    const attempts: ProviderAttempt[] = [];
    const config: ProviderConfig = { providers, deviceId: options.deviceId, tensorrt: options.tensorrt };
    let lastModelError: unknown;
    for (const provider of providers) {
      try {
        const sessionOptions: ort.InferenceSession.SessionOptions = {
          executionProviders: [providerOption(provider, config)],
          graphOptimizationLevel: 'all',
        };
        if (options.intraOpNumThreads !== undefined) sessionOptions.intraOpNumThreads = options.intraOpNumThreads;
        const session = await ort.InferenceSession.create(onnxBytes, sessionOptions);
        attempts.push({ provider, ok: true });
        const meta = session.inputMetadata.find((m) => m.name === ONNX_INPUT_NAME);
        if (!meta || !session.outputNames.includes(ONNX_OUTPUT_NAME)) {
          await session.release();
          throw new OnnxModelError(`${source}: expected input "${ONNX_INPUT_NAME}" and output "${ONNX_OUTPUT_NAME}" (a fedmed model), got inputs [${session.inputNames.join(', ')}] outputs [${session.outputNames.join(', ')}]`);
        }
        const shape = meta.isTensor ? meta.shape.slice(1).map((d) => (typeof d === 'number' ? d : -1)) : [];
        return new OnnxInferenceSession(session, provider, attempts, shape);
      } catch (err) {
        if (err instanceof OnnxModelError) throw err;
        const reason = withHint(provider, errorMessage(err).split('\n')[0]);
        attempts.push({ provider, ok: false, reason });
        if (isModelProblem(reason)) {
          lastModelError = err;
          break; // the model itself is bad; other providers will not help
        }
        log(`inference: execution provider "${provider}" unavailable, trying the next one: ${reason}`);
      }
    }
    if (lastModelError) throw new OnnxModelError(`${source}: onnxruntime cannot load the model: ${errorMessage(lastModelError).split('\n')[0]}`, { cause: lastModelError });
    throw new BackendError(`no execution provider could load ${source}: ${attempts.map((a) => `${a.provider}: ${a.reason}`).join('; ')}`);
  }

  /** Runs a batch. `input` is row-major [batch, ...inputShape]. */
  async run(input: Float32Array, batch: number): Promise<InferenceOutput> {
    const tensor = new ort.Tensor('float32', input, [batch, ...this.inputShape]);
    const result = await this.session.run({ [ONNX_INPUT_NAME]: tensor });
    const out = result[ONNX_OUTPUT_NAME];
    const classes = out.dims[1];
    return { probabilities: out.data as Float32Array, batch, classes };
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/** Adds what to do when a GPU provider's libraries are simply not installed. */
function withHint(provider: ProviderName, reason: string): string {
  if ((provider === 'tensorrt' || provider === 'cuda') && /Failed to load shared library/i.test(reason)) {
    return `${reason} (no ${provider === 'cuda' ? 'CUDA' : 'TensorRT'} provider libraries; on an NVIDIA machine run: ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node)`;
  }
  return reason;
}

function isModelProblem(reason: string): boolean {
  return /protobuf|invalid model|INVALID_GRAPH|INVALID_PROTOBUF|NOT_IMPLEMENTED|Load model|failed to load model|Type Error|ShapeInferenceError/i.test(reason) && !/provider|cuda|tensorrt|\.so/i.test(reason);
}
