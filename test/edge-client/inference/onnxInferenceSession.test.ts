import assert from 'node:assert/strict';
import { buildOnnxModel } from '../../../models/onnxModel.js';
import { zooModel } from '../../../models/zoo.js';
import { UsageError } from '../../../shared/errors.js';
import { initParams } from '../../../shared/model/initParams.js';
import { parseProviderList, providerOption } from '../../../edge-client/inference/executionProviders.js';
import { OnnxInferenceSession } from '../../../edge-client/inference/onnxInferenceSession.js';

describe('edge-client/inference/onnxInferenceSession', () => {
  const spec = zooModel('cnn-28', { numClasses: 2 });
  const onnx = buildOnnxModel(spec, initParams(spec, 1));

  it('tries tensorrt, cuda, cpu in turn; reports the provider in effect and each skipped one with its reason', async () => {
    const logged: string[] = [];
    const session = await OnnxInferenceSession.create(onnx, { log: (m) => logged.push(m) });
    try {
      assert.deepEqual(session.attempts.map((a) => a.provider), session.attempts.map((a) => a.provider).filter((p) => ['tensorrt', 'cuda', 'cpu'].includes(p)));
      assert.equal(session.attempts[session.attempts.length - 1].ok, true);
      assert.equal(session.provider, session.attempts[session.attempts.length - 1].provider);
      const failed = session.attempts.filter((a) => !a.ok);
      assert.equal(logged.length, failed.length, 'every fallback is logged');
      for (const a of failed) assert.ok(a.reason && logged.some((l) => l.includes(a.provider) && l.includes(a.reason!)));
      // This machine has no NVIDIA GPU libraries: the fallback to cpu must be visible, with a hint.
      if (session.provider === 'cpu') {
        assert.equal(failed.length, 2);
        for (const a of failed) assert.match(a.reason!, /npm rebuild onnxruntime-node|provider/i);
      }
      const out = await session.run(new Float32Array(3 * 784).fill(0.5), 3);
      assert.equal(out.batch, 3);
      assert.equal(out.classes, 2);
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(out.probabilities[2 * i] + out.probabilities[2 * i + 1] - 1) < 1e-5);
    } finally {
      await session.release();
    }
  });

  it('reports the model input shape', async () => {
    const session = await OnnxInferenceSession.create(onnx, { providers: ['cpu'] });
    assert.deepEqual(session.inputShape, [28, 28, 1]);
    await session.release();
  });

  it('applies TensorRT fp16 and engine cache through onnxruntime\'s ORT_TENSORRT_* settings', () => {
    const keys = ['ORT_TENSORRT_FP16_ENABLE', 'ORT_TENSORRT_ENGINE_CACHE_ENABLE', 'ORT_TENSORRT_CACHE_PATH'];
    const saved = keys.map((k) => process.env[k]);
    try {
      assert.deepEqual(providerOption('tensorrt', { providers: ['tensorrt'], deviceId: 1, tensorrt: { fp16: true, engineCacheDir: '/var/cache/trt' } }), { name: 'tensorrt', deviceId: 1 });
      assert.equal(process.env.ORT_TENSORRT_FP16_ENABLE, '1');
      assert.equal(process.env.ORT_TENSORRT_ENGINE_CACHE_ENABLE, '1');
      assert.equal(process.env.ORT_TENSORRT_CACHE_PATH, '/var/cache/trt');
      assert.deepEqual(providerOption('cpu', { providers: ['cpu'] }), { name: 'cpu' });
    } finally {
      keys.forEach((k, i) => (saved[i] === undefined ? delete process.env[k] : (process.env[k] = saved[i])));
    }
  });

  it('parses provider lists and rejects unknown providers', () => {
    assert.deepEqual(parseProviderList('TensorRT, cpu'), ['tensorrt', 'cpu']);
    assert.throws(() => parseProviderList('rocm'), (e: unknown) => e instanceof UsageError && /unknown execution provider "rocm"/.test(e.message));
    assert.throws(() => parseProviderList(' , '), UsageError);
  });
});
