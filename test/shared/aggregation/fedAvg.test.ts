import assert from 'node:assert/strict';
import { FedAvg } from '../../../shared/aggregation/fedAvg.js';
import { FederatedStrategy, sample } from '../../../shared/aggregation/federatedStrategy.js';
import { weightedMetrics } from '../../../shared/aggregation/strategy.js';
import { SeededRng } from '../../../shared/random/seededRng.js';
import { PlainAggregator } from '../../../coordinator/rounds/plainAggregator.js';
import { ProtocolError } from '../../../shared/protocol/protocolError.js';

const fit = { epochs: 1, batchSize: 32, learningRate: 0.01, optimizer: 'sgd' as const, proxMu: 0 };

describe('shared/aggregation: FedAvg and the plain aggregator', () => {
  it('equals Flower aggregate(): the example-weighted mean of the sites\' parameters', () => {
    const rng = new SeededRng(1);
    const d = 1000;
    const current = Float32Array.from({ length: d }, () => rng.normal());
    const sites = [10, 250, 37].map((n) => ({ n, params: Float32Array.from(current, (v) => v + 0.1 * rng.normal()) }));
    const agg = new PlainAggregator();
    agg.reset(d);
    for (const s of sites) {
      const delta = Float32Array.from(s.params, (v, i) => v - current[i]);
      agg.add(new Uint8Array(delta.buffer), s.n);
    }
    const next = new FederatedStrategy({ fractionFit: 1, minFitClients: 1, fractionEvaluate: 1, minEvaluateClients: 1, fit, seed: 1 }, new FedAvg()).aggregateFit(1, current, agg.result());
    // Flower: sum(n_k * w_k) / sum(n_k)
    const total = sites.reduce((a, s) => a + s.n, 0);
    let maxDiff = 0;
    for (let i = 0; i < d; i++) {
      const flower = sites.reduce((a, s) => a + s.n * s.params[i], 0) / total;
      maxDiff = Math.max(maxDiff, Math.abs(next[i] - flower));
    }
    assert.ok(maxDiff < 1e-6, `max diff ${maxDiff}`);
    assert.equal(agg.result().sites, 3);
    assert.equal(agg.result().totalExamples, total);
  });

  it('the aggregator refuses wrong-length and non-finite updates without changing the sum', () => {
    const agg = new PlainAggregator();
    agg.reset(4);
    agg.add(new Uint8Array(Float32Array.from([1, 1, 1, 1]).buffer), 2);
    assert.throws(() => agg.add(new Uint8Array(12), 1), (e: unknown) => e instanceof ProtocolError && /needs 4 float32 values/.test(e.message));
    assert.throws(() => agg.add(new Uint8Array(Float32Array.from([0, NaN, 0, 0]).buffer), 1), /value 1 is not finite/);
    assert.throws(() => agg.add(new Uint8Array(Float32Array.from([0, 0, Infinity, 0]).buffer), 1), /value 2 is not finite/);
    assert.deepEqual([...agg.result().weightedDeltaSum], [2, 2, 2, 2]);
    assert.equal(agg.result().totalExamples, 2);
  });

  it('samples max(min, ceil(fraction * n)) sites, reproducibly per seed and round', () => {
    const sites = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'];
    assert.equal(sample(sites, 0.3, 2, 1).length, 3);
    assert.equal(sample(sites, 0.1, 4, 1).length, 4);
    assert.equal(sample(['a'], 0.5, 3, 1).length, 1);
    assert.deepEqual(sample(sites, 0.5, 1, 7), sample([...sites].reverse(), 0.5, 1, 7));
    const s = new FederatedStrategy({ fractionFit: 0.5, minFitClients: 2, fractionEvaluate: 1, minEvaluateClients: 1, fit, seed: 3 }, new FedAvg());
    assert.notDeepEqual(s.configureFit(1, sites).sites, s.configureFit(2, sites).sites);
    assert.equal(s.configureFit(5, sites).config.seed, 8);
  });

  it('weights metrics by example counts', () => {
    const m = weightedMetrics([
      { numExamples: 30, metrics: { loss: 1, accuracy: 0.5, auc: 0.6 } },
      { numExamples: 10, metrics: { loss: 3, accuracy: 0.9 } },
    ]);
    assert.equal(m.loss, 1.5);
    assert.equal(m.accuracy, 0.6);
    assert.equal(m.auc, 0.6);
    assert.equal(m.numExamples, 40);
  });
});
