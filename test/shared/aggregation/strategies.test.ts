import assert from 'node:assert/strict';
import { AggregationError, type FitResult } from '../../../shared/aggregation/aggregationRule.js';
import { createStrategy, securityConflict, STRATEGY_NAMES } from '../../../shared/aggregation/createStrategy.js';
import { FederatedStrategy } from '../../../shared/aggregation/federatedStrategy.js';
import { decodeRuleState, encodeRuleState } from '../../../shared/aggregation/ruleStateFile.js';
import { checkStrategy, type ExperimentConfig } from '../../../coordinator/experimentConfig.js';
import { PlainAggregator } from '../../../coordinator/rounds/plainAggregator.js';
import { SeededRng } from '../../../shared/random/seededRng.js';
import * as fedmed from '../../../index.js';

const r = (params: number[], numExamples = 1): FitResult => ({ params: Float32Array.from(params), numExamples });
const v = (...x: number[]) => Float32Array.from(x);
function close(actual: Float32Array, expected: number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((e, i) => assert.ok(Math.abs(actual[i] - e) <= tol, `value ${i}: ${actual[i]} vs ${e}`));
}

describe('shared/aggregation: strategies against hand-computed cases', () => {
  it('FedAvg is the example-weighted mean of the sites\' parameters (Flower aggregate())', () => {
    close(createStrategy('fedavg').aggregateFit(v(0, 0), [r([1, 2], 1), r([3, 6], 3)]), [2.5, 5]);
  });

  it('FedProx aggregates like FedAvg and sends μ to the sites; μ is required', () => {
    const s = createStrategy('fedprox', { proximalMu: 0.1 });
    close(s.aggregateFit(v(0), [r([1], 1), r([3], 1)]), [2]);
    assert.deepEqual(s.fitConfig?.(), { proxMu: 0.1 });
    const fs = new FederatedStrategy({ fractionFit: 1, minFitClients: 1, fractionEvaluate: 1, minEvaluateClients: 1, fit: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proxMu: 0 }, seed: 1 }, s);
    assert.equal(fs.configureFit(1, ['a']).config.proxMu, 0.1);
    assert.throws(() => createStrategy('fedprox'), /needs the option proximalMu/);
  });

  it('FedAvgM: v = g in round 1, then v = βv + g; w = w − ηv (Flower)', () => {
    const s = createStrategy('fedavgm', { serverMomentum: 0.9 });
    const w1 = s.aggregateFit(v(1), [r([0.5])]); // g = 0.5, v = 0.5
    close(w1, [0.5]);
    close(s.aggregateFit(w1, [r([0.3])]), [-0.15]); // g = 0.2, v = 0.65
    // Without momentum (Flower's default) it is FedAvg scaled by the server learning rate.
    close(createStrategy('fedavgm', { serverLearningRate: 0.5 }).aggregateFit(v(1), [r([0])]), [0.5]);
  });

  it('FedAdam: with bias correction a constant pseudo-gradient moves by exactly η; without it, the paper\'s rule', () => {
    const bc = createStrategy('fedadam');
    const w1 = bc.aggregateFit(v(0), [r([1])]); // Δ = 1: m = 0.1, v = 0.01, η_1 = 0.1
    close(w1, [0.1]);
    close(bc.aggregateFit(w1, [r([1.1])]), [0.2]); // Δ = 1 again: η_2 √v / m = 1, step η
    const paper = createStrategy('fedadam', { biasCorrection: false });
    const p1 = paper.aggregateFit(v(0), [r([1])]);
    close(p1, [0.1]);
    close(paper.aggregateFit(p1, [r([1.1])]), [0.1 + (0.1 * 0.19) / Math.sqrt(0.0199)]); // m = 0.19, v = 0.0199
  });

  it('FedYogi: v ← v − (1 − β2) Δ² sign(v − Δ²), τ = 1e-3, η = 0.01 (Flower defaults)', () => {
    const s = createStrategy('fedyogi');
    const w1 = s.aggregateFit(v(0), [r([2])]); // m = 0.2, v = 0.04
    close(w1, [(0.01 * 0.2) / (0.2 + 1e-3)]);
    const w2 = s.aggregateFit(w1, [r([w1[0] + 2])]); // m = 0.38, v = 0.08
    close(w2, [w1[0] + (0.01 * 0.38) / (Math.sqrt(0.08) + 1e-3)]);
  });

  it('FedAdagrad: m = Δ, v ← v + Δ²', () => {
    const s = createStrategy('fedadagrad');
    const w1 = s.aggregateFit(v(0), [r([2])]);
    close(w1, [0.1]);
    close(s.aggregateFit(w1, [r([1.1])]), [0.1 + 0.1 / Math.sqrt(5)]);
  });

  it('server optimiser state survives export/import (a coordinator restart) bit for bit', () => {
    const rng = new SeededRng(3);
    const w0 = Float32Array.from({ length: 50 }, () => rng.normal());
    const rounds = [0, 1, 2].map(() => [r([...w0].map((x) => x + rng.normal() * 0.1), 3), r([...w0].map((x) => x + rng.normal() * 0.1), 5)]);
    for (const name of ['fedadam', 'fedyogi', 'fedadagrad', 'fedavgm'] as const) {
      const a = createStrategy(name, name === 'fedavgm' ? { serverMomentum: 0.9 } : {});
      let wa: Float32Array = w0;
      for (const res of rounds) wa = a.aggregateFit(wa, res);
      const b1 = createStrategy(name, name === 'fedavgm' ? { serverMomentum: 0.9 } : {});
      let wb: Float32Array = b1.aggregateFit(w0, rounds[0]);
      const b2 = createStrategy(name, name === 'fedavgm' ? { serverMomentum: 0.9 } : {});
      b2.importState(decodeRuleState(encodeRuleState(b1.exportState())));
      for (const res of rounds.slice(1)) wb = b2.aggregateFit(wb, res);
      assert.deepEqual(wb, wa, name);
    }
  });

  it('FedMedian: coordinate-wise median, mean of the two middle values for an even count', () => {
    close(createStrategy('fedmedian').aggregateFit(v(0, 0), [r([1, 10]), r([2, 20], 100), r([100, -5])]), [2, 10]);
    close(createStrategy('fedmedian').aggregateFit(v(0), [r([1]), r([2]), r([4]), r([100])]), [3]);
  });

  it('FedTrimmedAvg: cuts ⌊βn⌋ from each end (β = 0.2 by default), unweighted', () => {
    close(createStrategy('fedtrimmedavg').aggregateFit(v(0), [r([1]), r([100], 50), r([3]), r([4]), r([-50])]), [(1 + 3 + 4) / 3]);
    close(createStrategy('fedtrimmedavg', { beta: 0 }).aggregateFit(v(0), [r([1]), r([2])]), [1.5]);
  });

  it('Krum picks the lowest score (sum of squared distances to the n − f − 2 nearest); ties go to the lower index', () => {
    // scores: 0 → 1 + 4 = 5, 1 → 1 + 1 = 2, 2 → 5, 10 → 145
    close(createStrategy('krum').aggregateFit(v(0), [r([0]), r([1]), r([2]), r([10])]), [1]);
    // Two sites, equal scores (Flower: np.argmin takes the first).
    close(createStrategy('krum').aggregateFit(v(0), [r([0]), r([2])]), [0]);
    // Multi-Krum keeps the 2 best (index 1, then the tie 0/2 goes to 0) and weights them by examples.
    close(createStrategy('krum', { numClientsToKeep: 2 }).aggregateFit(v(0), [r([0], 3), r([1], 1), r([2], 1), r([10], 1)]), [0.25]);
    assert.throws(() => createStrategy('krum', { numClientsToKeep: 5 }).aggregateFit(v(0), [r([0]), r([1])]), /exceeds the 2 results/);
  });

  it('Bulyan needs n >= 4f + 3, selects θ = n − 2f by repeated Krum and averages the β = θ − 2f closest to the median', () => {
    const results = [0, 1, 2, 3, 4, 5, 100].map((x) => r([x, -x]));
    // Krum (f = 1) picks 2, then 3, then 1 (tie with 4, lower index), 4, 0; median 2; the 3 closest: 2, 3, 1.
    close(createStrategy('bulyan', { numMaliciousClients: 1 }).aggregateFit(v(0, 0), results), [2, -2]);
    assert.throws(
      () => createStrategy('bulyan', { numMaliciousClients: 1 }).aggregateFit(v(0, 0), results.slice(0, 6)),
      (e: unknown) => e instanceof AggregationError && /at least 4f \+ 3 = 7 results/.test(e.message),
    );
    // f = 0: all models selected, mean of all per coordinate.
    close(createStrategy('bulyan').aggregateFit(v(0), [r([1]), r([2]), r([6])]), [3]);
  });

  it('createStrategy names what is wrong: unknown strategies and options, wrong lengths', () => {
    assert.throws(() => createStrategy('fedsgd'), /unknown strategy "fedsgd"; choose one of fedavg/);
    assert.throws(() => createStrategy('fedadam', { momentum: 0.9 }), /fedadam has no option "momentum" \(it accepts eta, beta1, beta2, tau, biasCorrection\)/);
    assert.throws(() => createStrategy('fedmedian', { beta: 0.1 }), /takes no options/);
    assert.throws(() => createStrategy('fedyogi', { eta: -1 }), /eta must be > 0/);
    assert.throws(() => createStrategy('fedavg').aggregateFit(v(0, 0), [r([1])]), /result 0 has 1 parameters, the model has 2/);
    assert.throws(() => createStrategy('fedavg').aggregateFit(v(0), []), /no results/);
    assert.equal(STRATEGY_NAMES.length, 10);
    // The library API: import { createStrategy } from 'fedmed'.
    close(fedmed.createStrategy('fedavg').aggregateFit(v(0), [r([2], 1), r([4], 1)]), [3]);
  });

  it('robust strategies are refused with secure aggregation, with the alternatives named', () => {
    assert.match(securityConflict('krum', 'secagg')!, /needs each site's individual update.*normBound/);
    assert.equal(securityConflict('fedyogi', 'secagg'), null);
    assert.equal(securityConflict('bulyan', 'plain'), null);
    const base = { name: 'x', model: { zoo: 'logreg' } } as ExperimentConfig;
    assert.throws(() => checkStrategy({ ...base, strategy: 'fedmedian', security: 'secagg' }), /fedmedian needs each site's individual update/);
    assert.throws(() => checkStrategy({ ...base, strategy: 'fedavg', security: 'secagg', normBound: 1 }), /normBound is applied by the coordinator/);
    assert.doesNotThrow(() => checkStrategy({ ...base, strategy: 'krum', security: 'plain', strategyOptions: { numMaliciousClients: 1 } }));
  });

  it('the round engine\'s strategy feeds robust rules the kept individual updates', () => {
    const agg = new PlainAggregator();
    agg.reset(1, { keepUpdates: true });
    for (const [site, x] of [['c', 2], ['a', 0], ['b', 1], ['d', 10]] as const) agg.add(new Uint8Array(v(x).buffer), 1, site);
    const fs = (name: string) => new FederatedStrategy({ fractionFit: 1, minFitClients: 1, fractionEvaluate: 1, minEvaluateClients: 1, fit: { epochs: 1, batchSize: 8, learningRate: 0.1, optimizer: 'sgd', proxMu: 0 }, seed: 1 }, createStrategy(name));
    const result = agg.result();
    assert.deepEqual(result.updates!.map((u) => u.site), ['a', 'b', 'c', 'd']);
    close(fs('krum').aggregateFit(1, v(5), result), [6]); // params 5 + δ: 5, 6, 7, 15 → Krum picks 6
    close(fs('fedavg').aggregateFit(1, v(5), result), [8.25]);
    const streamed = new PlainAggregator();
    streamed.reset(1);
    streamed.add(new Uint8Array(v(1).buffer), 1);
    assert.throws(() => fs('fedmedian').aggregateFit(1, v(0), streamed.result()), /needs the individual updates/);
  });

  it('kept updates are summed in site order: any arrival order gives the same bits', () => {
    const rng = new SeededRng(9);
    const updates = Array.from({ length: 6 }, (_, k) => ({ site: `s${k}`, delta: Float32Array.from({ length: 2000 }, () => rng.normal() * 10 ** (rng.int(9) - 4)), n: 1 + rng.int(1000) }));
    const sums = [updates, [...updates].reverse(), [updates[3], updates[0], updates[5], updates[1], updates[4], updates[2]]].map((order) => {
      const agg = new PlainAggregator();
      agg.reset(2000, { keepUpdates: true });
      for (const u of order) agg.add(new Uint8Array(u.delta.buffer), u.n, u.site);
      return Float64Array.from(agg.result().weightedDeltaSum);
    });
    assert.deepEqual(sums[1], sums[0]);
    assert.deepEqual(sums[2], sums[0]);
  });

  it('norm bounding scales an update above the bound down to it and counts it', () => {
    const agg = new PlainAggregator();
    agg.reset(2, { normBound: 1 });
    agg.add(new Uint8Array(v(3, 4).buffer), 2, 'a'); // norm 5 → scaled to (0.6, 0.8)
    agg.add(new Uint8Array(v(0.1, 0).buffer), 1, 'b');
    close(Float32Array.from(agg.result().weightedDeltaSum), [1.3, 1.6]);
    assert.equal(agg.bounded, 1);
  });
});
