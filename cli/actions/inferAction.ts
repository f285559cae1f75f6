/** The work behind `fedmed infer` (loaded only when that command runs: it loads onnxruntime). */
import { readFileSync } from 'node:fs';
import { DataFormatError, OnnxModelError } from '../../shared/errors.js';
import { classificationMetrics } from '../../shared/metrics/classificationMetrics.js';
import { parseProviderList } from '../../edge-client/inference/executionProviders.js';
import { OnnxInferenceSession } from '../../edge-client/inference/onnxInferenceSession.js';
import { readNpz } from '../../edge-client/data/npzReader.js';
import { toLabels } from '../../edge-client/data/medmnistLoader.js';
import type { InferFlags } from '../inferCommand.js';

export async function runInfer(flags: InferFlags): Promise<void> {
  const providers = parseProviderList(flags.providers);
  let onnxBytes: Buffer;
  try {
    onnxBytes = readFileSync(flags.model);
  } catch (err) {
    throw new OnnxModelError(`${flags.model}: cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const session = await OnnxInferenceSession.create(
    onnxBytes,
    { providers, tensorrt: { fp16: flags.trtFp16, engineCacheDir: flags.trtCache }, log: flags.json ? () => {} : undefined },
    flags.model,
  );
  try {
    const arrays = readNpz(readFileSync(flags.input), flags.input);
    const xArr = arrays.get(`${flags.split}_images`) ?? arrays.get('x') ?? arrays.get('images');
    if (!xArr) throw new DataFormatError(`${flags.input}: no "${flags.split}_images", "x" or "images" array (has ${[...arrays.keys()].join(', ')})`);
    const labelArr = arrays.get(`${flags.split}_labels`) ?? arrays.get('y') ?? arrays.get('labels');
    const n = xArr.shape[0];
    const exampleSize = session.inputShape.reduce((a, b) => a * b, 1);
    const actualSize = xArr.shape.slice(1).reduce((a, b) => a * b, 1);
    if (actualSize !== exampleSize) throw new DataFormatError(`${flags.input}: examples have shape (${xArr.shape.slice(1).join(', ')}) but the model expects (${session.inputShape.join(', ')})`);
    const scale = xArr.dtype === 'u1' ? 1 / 255 : 1;
    const x = Float32Array.from(xArr.data, (v) => v * scale);
    let classes = 0;
    let probs = new Float32Array(0);
    const started = performance.now();
    for (let start = 0; start < n; start += flags.batchSize) {
      const b = Math.min(flags.batchSize, n - start);
      const out = await session.run(x.subarray(start * exampleSize, (start + b) * exampleSize), b);
      if (!classes) {
        classes = out.classes;
        probs = new Float32Array(n * classes);
      }
      probs.set(out.probabilities, start * classes);
    }
    const seconds = (performance.now() - started) / 1000;
    const predictions = Array.from({ length: n }, (_, i) => {
      let best = 0;
      for (let c = 1; c < classes; c++) if (probs[i * classes + c] > probs[i * classes + best]) best = c;
      return best;
    });
    const metrics = labelArr ? classificationMetrics(probs, toLabels(labelArr, flags.input), classes) : null;
    const report = {
      model: flags.model,
      provider: session.provider,
      providerAttempts: session.attempts,
      examples: n,
      samplesPerSecond: n / seconds,
      predictions,
      probabilities: flags.probabilities ? Array.from(probs) : undefined,
      metrics,
    };
    if (flags.json) {
      process.stdout.write(`${JSON.stringify(report)}\n`);
      return;
    }
    console.log(`execution provider: ${session.provider}${session.attempts.length > 1 ? ` (skipped: ${session.attempts.filter((a) => !a.ok).map((a) => `${a.provider}: ${a.reason}`).join('; ')})` : ''}`);
    console.log(`${n} examples in ${seconds.toFixed(3)} s (${report.samplesPerSecond.toFixed(0)} samples/s)`);
    console.log(`predictions: ${predictions.slice(0, 20).join(' ')}${n > 20 ? ' ...' : ''}`);
    if (metrics) console.log(`accuracy ${metrics.accuracy.toFixed(4)} AUC ${metrics.auc.toFixed(4)} loss ${metrics.loss.toFixed(4)}`);
  } finally {
    await session.release();
  }
}
