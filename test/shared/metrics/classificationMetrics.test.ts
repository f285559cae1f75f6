import assert from 'node:assert/strict';
import { classificationMetrics, rocAuc } from '../../../shared/metrics/classificationMetrics.js';

describe('shared/metrics/classificationMetrics', () => {
  it('AUC matches hand-computed values (scikit-learn doc example: 0.75)', () => {
    assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    assert.equal(rocAuc([0.1, 0.2, 0.3], [0, 1, 1]), 1);
    assert.equal(rocAuc([0.3, 0.2, 0.1], [0, 1, 1]), 0);
  });

  it('AUC counts ties as half', () => {
    assert.equal(rocAuc([0.5, 0.5], [0, 1]), 0.5);
    assert.equal(rocAuc([0.1, 0.5, 0.5, 0.9], [0, 0, 1, 1]), 0.875);
  });

  it('AUC is NaN with only one class present', () => {
    assert.ok(Number.isNaN(rocAuc([0.1, 0.2], [1, 1])));
  });

  it('accuracy, loss and macro one-vs-rest AUC for 3 classes', () => {
    const probs = Float32Array.from([0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.1, 0.2, 0.7, 0.6, 0.3, 0.1]);
    const labels = Int32Array.from([0, 1, 2, 1]);
    const m = classificationMetrics(probs, labels, 3);
    assert.equal(m.accuracy, 0.75);
    const expectedLoss = -(Math.log(0.8) + Math.log(0.7) + Math.log(0.7) + Math.log(0.3)) / 4;
    assert.ok(Math.abs(m.loss - expectedLoss) < 1e-6);
    // class 0: scores [.8,.2,.1,.6] pos {0} -> 1; class 1: [.1,.7,.2,.3] pos {1,3} -> 1; class 2: [.1,.1,.7,.1] pos {2} -> 1
    assert.equal(m.auc, 1);
    assert.equal(m.numExamples, 4);
  });
});
