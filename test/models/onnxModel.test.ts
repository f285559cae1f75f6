import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { buildOnnxModel, parseOnnxModel } from '../../models/onnxModel.js';
import { TfjsModel } from '../../models/tfjsModel.js';
import { zooModel } from '../../models/zoo.js';
import { OnnxModelError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/initParams.js';
import { parseModelSpec, type ModelSpec } from '../../shared/model/modelSpec.js';
import { SeededRng } from '../../shared/random/seededRng.js';
import { OnnxInferenceSession } from '../../edge-client/inference/onnxInferenceSession.js';
import { initTrainingBackend } from '../../edge-client/training/trainingBackend.js';
import { findPythonWithOnnx, runOnnxChecker } from '../helpers/onnxChecker.js';
import { makeTempDir } from '../helpers/paths.js';

/** Every zoo model, plus specs that exercise same padding, strides and non-square inputs. */
const SPECS: ModelSpec[] = [
  zooModel('cnn-28', { numClasses: 10 }),
  zooModel('cnn-28', { numClasses: 2 }),
  zooModel('mlp-tabular', { numFeatures: 13, numClasses: 2, hidden: [32, 16] }),
  zooModel('logreg', { numFeatures: 30, numClasses: 2 }),
  parseModelSpec({
    name: 'strided-same',
    inputShape: [9, 7, 3],
    layers: [
      { type: 'conv2d', filters: 5, kernelSize: [3, 2], strides: 2, padding: 'same' },
      { type: 'relu' },
      { type: 'maxpool2d', poolSize: 2, strides: 1, padding: 'same' },
      { type: 'conv2d', filters: 4, kernelSize: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 3 },
      { type: 'softmax' },
    ],
  }),
];

describe('models/onnxModel: ONNX export', function () {
  this.timeout(120_000);
  before(async () => {
    await initTrainingBackend('wasm');
  });

  for (const spec of SPECS) {
    it(`${spec.name} (${spec.inputShape.join('x')}): onnxruntime output equals tfjs within 1e-4`, async () => {
      // Non-trivial weights: Glorot init plus random biases so every bias path is exercised.
      const params = initParams(spec, 11);
      const rng = new SeededRng(5);
      for (let i = 0; i < params.length; i++) params[i] += 0.05 * rng.normal();
      const batch = 8;
      const size = spec.inputShape.reduce((a, b) => a * b, 1);
      const x = Float32Array.from({ length: batch * size }, () => rng.next());
      const model = new TfjsModel(spec, params);
      const expected = tf.tidy(() => model.probabilities(tf.tensor(x, [batch, ...spec.inputShape]))).dataSync() as Float32Array;
      model.dispose();
      const session = await OnnxInferenceSession.create(buildOnnxModel(spec, params), { providers: ['cpu'] });
      const out = await session.run(x, batch);
      await session.release();
      assert.equal(out.probabilities.length, expected.length);
      let maxDiff = 0;
      for (let i = 0; i < expected.length; i++) maxDiff = Math.max(maxDiff, Math.abs(out.probabilities[i] - expected[i]));
      assert.ok(maxDiff <= 1e-4, `max abs diff ${maxDiff}`);
      // Not a degenerate comparison: outputs vary across the batch.
      assert.notEqual(expected[0], expected[expected.length - 1]);
    });
  }

  it('every exported model passes the official ONNX checker (full_check)', function () {
    const python = findPythonWithOnnx();
    if (!python) {
      if (process.env.CI) assert.fail('CI must have the Python onnx package (.ci/run installs python3-onnx)');
      console.log('      skipped: no Python with the onnx package (apt-get install python3-onnx; required when CI is set)');
      this.skip(); // developer machine without python3-onnx
    }
    const t = makeTempDir();
    try {
      for (const spec of SPECS) {
        const file = join(t.dir, `${spec.name}.onnx`);
        writeFileSync(file, buildOnnxModel(spec, initParams(spec, 1)));
        const r = runOnnxChecker(python!, file);
        assert.ok(r.ok, `${spec.name}: ${r.output}`);
      }
    } finally {
      t.cleanup();
    }
  });

  it('parseOnnxModel and onnxruntime refuse corrupt bytes with a typed error', async () => {
    const bytes = buildOnnxModel(SPECS[3], initParams(SPECS[3], 1));
    assert.equal(parseOnnxModel(bytes, 'ok.onnx').graph?.name, 'logreg');
    const corrupt = bytes.slice(0, 40);
    await assert.rejects(OnnxInferenceSession.create(corrupt, { providers: ['cpu'] }, 'bad.onnx'), (e: unknown) => e instanceof OnnxModelError && e.message.includes('bad.onnx'));
  });
});
