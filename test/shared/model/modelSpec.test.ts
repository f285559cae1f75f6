import assert from 'node:assert/strict';
import { zooModel, ZOO } from '../../../models/zoo.js';
import { ModelSpecError } from '../../../shared/errors.js';
import { parseModelSpec, resolveLayers } from '../../../shared/model/modelSpec.js';
import { layoutOf } from '../../../shared/model/parameterLayout.js';

describe('shared/model/modelSpec', () => {
  it('cnn-28 at 10 classes has the conv32-pool-conv64-pool-dense128-dense10 shapes and ~225k parameters', () => {
    const spec = zooModel('cnn-28', { numClasses: 10 });
    const layers = resolveLayers(spec);
    assert.deepEqual(layers.map((l) => l.outShape), [[26, 26, 32], [26, 26, 32], [13, 13, 32], [11, 11, 64], [11, 11, 64], [5, 5, 64], [1600], [128], [128], [128], [10], [10]]);
    const layout = layoutOf(spec);
    assert.equal(layout.size, 320 + 18496 + 204928 + 1290);
    assert.deepEqual(layout.entries.map((e) => e.name), [
      'layer0_conv2d/kernel', 'layer0_conv2d/bias', 'layer3_conv2d/kernel', 'layer3_conv2d/bias',
      'layer7_dense/kernel', 'layer7_dense/bias', 'layer10_dense/kernel', 'layer10_dense/bias',
    ]);
    // Offsets are contiguous.
    let offset = 0;
    for (const e of layout.entries) {
      assert.equal(e.offset, offset);
      offset += e.shape.reduce((a, b) => a * b, 1);
    }
  });

  it('logreg is a single dense layer', () => {
    const spec = zooModel('logreg', { numFeatures: 13, numClasses: 2 });
    assert.equal(layoutOf(spec).size, 13 * 2 + 2);
  });

  it('every zoo model round-trips through parseModelSpec (JSON)', () => {
    for (const entry of ZOO) {
      const spec = zooModel(entry.name, { numClasses: 3 });
      assert.deepEqual(parseModelSpec(JSON.parse(JSON.stringify(spec))), spec);
    }
  });

  it('same padding follows TF arithmetic (ceil(in/stride))', () => {
    const spec = parseModelSpec({ name: 's', inputShape: [7, 7, 2], layers: [{ type: 'conv2d', filters: 4, kernelSize: 3, strides: 2, padding: 'same' }, { type: 'flatten' }, { type: 'dense', units: 2 }] });
    const [conv] = resolveLayers(spec);
    assert.deepEqual(conv.outShape, [4, 4, 4]);
    assert.deepEqual(conv.window!.pads, [1, 1, 1, 1]);
  });

  const bad: [string, unknown, RegExp][] = [
    ['not an object', 42, /expected a JSON object/],
    ['missing name', { inputShape: [3], layers: [{ type: 'dense', units: 2 }] }, /"name"/],
    ['bad input shape', { name: 'm', inputShape: [0], layers: [{ type: 'dense', units: 2 }] }, /inputShape/],
    ['unknown layer', { name: 'm', inputShape: [3], layers: [{ type: 'lstm' }] }, /layers\[0\]: unknown layer type "lstm"/],
    ['unknown field', { name: 'm', inputShape: [3], layers: [{ type: 'dense', units: 2, activation: 'relu' }] }, /unknown field "activation"/],
    ['dense on an image', { name: 'm', inputShape: [4, 4, 1], layers: [{ type: 'dense', units: 2 }] }, /add a flatten layer/],
    ['window larger than input', { name: 'm', inputShape: [2, 2, 1], layers: [{ type: 'conv2d', filters: 1, kernelSize: 3 }, { type: 'flatten' }] }, /does not fit input 2x2/],
    ['softmax not last', { name: 'm', inputShape: [3], layers: [{ type: 'softmax' }, { type: 'dense', units: 2 }] }, /only allowed as the last layer/],
    ['dropout rate 1', { name: 'm', inputShape: [3], layers: [{ type: 'dropout', rate: 1 }, { type: 'dense', units: 2 }] }, /rate must be/],
    ['image output', { name: 'm', inputShape: [4, 4, 1], layers: [{ type: 'conv2d', filters: 2, kernelSize: 1 }] }, /output must be a flat vector/],
  ];
  for (const [what, value, message] of bad) {
    it(`rejects a malformed spec: ${what}`, () => {
      assert.throws(() => parseModelSpec(value, 'spec.json'), (err: unknown) => err instanceof ModelSpecError && message.test(err.message));
    });
  }
});
