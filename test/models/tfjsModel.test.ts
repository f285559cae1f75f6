import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs';
import { TfjsModel } from '../../models/tfjsModel.js';
import { zooModel } from '../../models/zoo.js';
import { ParamsError } from '../../shared/errors.js';
import { initParams } from '../../shared/model/initParams.js';
import { initTrainingBackend } from '../../edge-client/training/trainingBackend.js';

describe('models/tfjsModel', () => {
  before(async () => {
    await initTrainingBackend('wasm');
  });

  it('flat vector -> tfjs variables -> flat vector is exact, and leaks no tensors', () => {
    const spec = zooModel('cnn-28', { numClasses: 10 });
    const params = initParams(spec, 3);
    const before = tf.memory().numTensors;
    const model = new TfjsModel(spec, params);
    assert.deepEqual(model.getParams(), params);
    const changed = params.map((v) => v * 2);
    model.setParams(changed);
    assert.deepEqual(model.getParams(), changed);
    tf.tidy(() => {
      const probs = model.probabilities(tf.zeros([2, 28, 28, 1]));
      assert.deepEqual(probs.shape, [2, 10]);
      for (const s of tf.sum(probs, 1).dataSync()) assert.ok(Math.abs(s - 1) < 1e-5);
    });
    model.dispose();
    assert.equal(tf.memory().numTensors, before);
  });

  it('refuses a vector of the wrong size or with NaN', () => {
    const spec = zooModel('logreg', { numFeatures: 4 });
    assert.throws(() => new TfjsModel(spec, new Float32Array(3)), (e: unknown) => e instanceof ParamsError && /expected 10 values/.test(e.message));
    const bad = new Float32Array(10);
    bad[2] = NaN;
    assert.throws(() => new TfjsModel(spec, bad), /value 2 is not finite/);
  });
});
