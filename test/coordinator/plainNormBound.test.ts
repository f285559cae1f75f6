/**
 * Server-side norm bounding relative to the round's median update norm (the plain default,
 * `normBound: { medianMultiple: 3 }`), and the example-weight cap: unit tests of PlainAggregator
 * and the experiment config helpers.
 */
import assert from 'node:assert/strict';
import { exampleWeight, normBoundOf, type ExperimentConfig } from '../../coordinator/experimentConfig.js';
import { PlainAggregator } from '../../coordinator/rounds/plainAggregator.js';

const bytes = (...x: number[]) => new Uint8Array(Float32Array.from(x).buffer);

describe('plain norm bounding relative to the median norm, and the example-weight cap', () => {
  it('an update above k × the median norm is scaled down to it; the others are untouched', () => {
    const agg = new PlainAggregator();
    agg.reset(2, { normBound: { medianMultiple: 3 } });
    agg.add(bytes(0.3, 0.4), 1, 'a'); // norm 0.5
    agg.add(bytes(0, 0.5), 1, 'b'); // norm 0.5
    agg.add(bytes(300, 400), 1, 'c'); // norm 500 → 1.5: (0.9, 1.2)
    const r = agg.result();
    assert.ok(Math.abs(agg.appliedBound! - 1.5) < 1e-6, String(agg.appliedBound));
    assert.equal(agg.bounded, 1);
    assert.ok(Math.abs(r.weightedDeltaSum[0] - 1.2) < 1e-6 && Math.abs(r.weightedDeltaSum[1] - 2.1) < 1e-6, String([...r.weightedDeltaSum]));
    assert.equal(r.updates, undefined, 'updates are kept only for the bound, not handed to the strategy');
  });

  it('with kept updates (robust rules) the strategy gets the bounded updates', () => {
    const agg = new PlainAggregator();
    agg.reset(1, { normBound: { medianMultiple: 2 }, keepUpdates: true });
    for (const [site, x] of [['a', 1], ['b', 2], ['c', 100]] as const) agg.add(bytes(x), 1, site);
    const r = agg.result();
    assert.deepEqual(r.updates!.map((u) => u.delta[0]), [1, 2, 4]);
    assert.equal(agg.appliedBound, 4);
  });

  it('defaults: 3 × the median in plain mode, "none" turns it off; weights above maxExampleWeight are clipped', () => {
    const base = { name: 'x', model: { zoo: 'logreg' } } as unknown as ExperimentConfig;
    assert.deepEqual(normBoundOf(base), { medianMultiple: 3 });
    assert.equal(normBoundOf({ ...base, normBound: 'none' }), undefined);
    assert.equal(normBoundOf({ ...base, normBound: 2 }), 2);
    assert.equal(exampleWeight(base, 2 ** 53 - 1), 10_000);
    assert.equal(exampleWeight({ ...base, maxExampleWeight: 50 }, 80), 50);
    assert.equal(exampleWeight(base, 80), 80);
  });
});
