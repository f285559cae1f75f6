/**
 * Execution-provider configuration for onnxruntime-node.
 *
 * The default order is tensorrt > cuda > cpu: TensorRT where an NVIDIA GPU and its libraries
 * exist, CUDA next, CPU everywhere. onnxruntime-node throws when the FIRST provider of a list
 * cannot load instead of falling back, so the session factory tries one provider at a time.
 *
 * The Node binding passes only `deviceId` to the TensorRT provider; its other settings are read
 * by onnxruntime's TensorRT provider from ORT_TENSORRT_* environment variables, which is how
 * fp16 and the engine cache are applied here.
 */
import { UsageError } from '../../shared/errors.js';

export const SUPPORTED_PROVIDERS = ['tensorrt', 'cuda', 'cpu'] as const;
export type ProviderName = (typeof SUPPORTED_PROVIDERS)[number];
export const DEFAULT_PROVIDERS: readonly ProviderName[] = ['tensorrt', 'cuda', 'cpu'];

export interface TensorRtOptions {
  /** Build fp16 engines (faster on GPUs with tensor cores; small accuracy change). */
  fp16?: boolean;
  /** Folder for serialised TensorRT engines, so later starts skip the engine build. */
  engineCacheDir?: string;
}

export interface ProviderConfig {
  providers: ProviderName[];
  deviceId?: number;
  tensorrt?: TensorRtOptions;
}

/** Parses "tensorrt,cuda,cpu" (as on the CLI) into a checked provider list. */
export function parseProviderList(text: string): ProviderName[] {
  const names = text.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  if (names.length === 0) throw new UsageError('--providers needs at least one execution provider (tensorrt, cuda, cpu)');
  for (const n of names) {
    if (!(SUPPORTED_PROVIDERS as readonly string[]).includes(n)) throw new UsageError(`unknown execution provider "${n}"; supported: ${SUPPORTED_PROVIDERS.join(', ')}`);
  }
  return names as ProviderName[];
}

/** The onnxruntime-node provider option object for one provider, with its environment applied. */
export function providerOption(name: ProviderName, config: ProviderConfig): { name: string; deviceId?: number } {
  if (name === 'tensorrt') {
    const trt = config.tensorrt ?? {};
    if (trt.fp16 !== undefined) process.env.ORT_TENSORRT_FP16_ENABLE = trt.fp16 ? '1' : '0';
    if (trt.engineCacheDir) {
      process.env.ORT_TENSORRT_ENGINE_CACHE_ENABLE = '1';
      process.env.ORT_TENSORRT_CACHE_PATH = trt.engineCacheDir;
    }
  }
  return name === 'cpu' ? { name } : { name, deviceId: config.deviceId ?? 0 };
}
