import assert from 'node:assert/strict';
import { partition } from '../../simulations/partitioners.js';
import { HEART_DISEASE_CENTERS, HEART_DISEASE_FEATURES, loadHeartDiseaseCenter } from '../../simulations/heartDisease.js';
import { parseSimulationConfig } from '../../simulations/simulationConfig.js';
import { SeededRng } from '../../shared/random/seededRng.js';
import { sharedDataFile } from '../helpers/paths.js';

function labels(n: number, classes: number, seed: number): Int32Array {
  const rng = new SeededRng(seed);
  return Int32Array.from({ length: n }, () => rng.int(classes));
}

/** Mean over sites of the largest class share: 1/classes for IID, → 1 for extreme label skew. */
function skew(parts: number[][], y: Int32Array, classes: number): number {
  return parts.reduce((a, p) => {
    const counts = Array(classes).fill(0);
    for (const i of p) counts[y[i]]++;
    return a + Math.max(...counts) / p.length;
  }, 0) / parts.length;
}

describe('simulations: partitions and data', () => {
  const y = labels(5000, 4, 1);

  for (const kind of ['iid', 'dirichlet', 'quantity'] as const) {
    it(`${kind}: every example goes to exactly one site, each site gets at least the minimum, same seed same split`, () => {
      const parts = partition(y, 4, 20, kind, { alpha: 0.5, seed: 7, minPerSite: 5 });
      assert.equal(parts.length, 20);
      const all = parts.flat().sort((a, b) => a - b);
      assert.deepEqual(all, Array.from({ length: 5000 }, (_, i) => i));
      assert.ok(parts.every((p) => p.length >= 5));
      assert.deepEqual(partition(y, 4, 20, kind, { alpha: 0.5, seed: 7, minPerSite: 5 }), parts);
      assert.notDeepEqual(partition(y, 4, 20, kind, { alpha: 0.5, seed: 8, minPerSite: 5 }), parts);
    });
  }

  it('iid gives equal sizes and no label skew; Dirichlet skews labels more as α shrinks; quantity skews sizes', () => {
    const iid = partition(y, 4, 10, 'iid', { seed: 1 });
    assert.ok(iid.every((p) => p.length === 500));
    const sIid = skew(iid, y, 4);
    const s5 = skew(partition(y, 4, 10, 'dirichlet', { alpha: 5, seed: 1 }), y, 4);
    const s01 = skew(partition(y, 4, 10, 'dirichlet', { alpha: 0.1, seed: 1 }), y, 4);
    assert.ok(sIid < 0.3 && sIid < s5 && s5 < s01 && s01 > 0.7, `skew iid ${sIid}, α=5 ${s5}, α=0.1 ${s01}`);
    const sizes = partition(y, 4, 10, 'quantity', { alpha: 0.3, seed: 1 }).map((p) => p.length);
    assert.ok(Math.max(...sizes) > 4 * Math.min(...sizes), `sizes ${sizes.join(', ')}`);
  });

  it('refuses impossible partitions with a reason', () => {
    assert.throws(() => partition(y.subarray(0, 10), 4, 20, 'iid', { seed: 1 }), /10 examples cannot give 20 sites/);
    assert.throws(() => partition(y, 4, 5, 'dirichlet', { seed: 1 }), /needs alpha > 0/);
  });

  it('the config names what is wrong and fills defaults', () => {
    assert.throws(() => parseSimulationConfig({ name: 'x', data: { source: 'csv' }, model: { zoo: 'logreg' }, partition: { kind: 'iid', sites: 3 } }), /data.path is required/);
    assert.throws(() => parseSimulationConfig({ name: 'x', data: { source: 'synthetic-tabular' }, model: { zoo: 'logreg' }, partition: { kind: 'natural' } }), /partition "natural" needs a data set with its own sites/);
    assert.throws(() => parseSimulationConfig({ name: 'x', data: { source: 'synthetic-tabular' }, model: { zoo: 'logreg' }, partition: { kind: 'iid', sites: 3 }, roundz: 3 }), /\(top level\) must NOT have additional properties "roundz"/);
    assert.throws(() => parseSimulationConfig({ name: 'x', data: { source: 'synthetic-tabular' }, model: { zoo: 'logreg' }, partition: { kind: 'iid', sites: 3 }, strategies: [{ name: 'fedfoo' }] }), /strategies.0.name must be equal to one of the allowed values/);
    assert.throws(() => parseSimulationConfig({ name: 'x', data: { source: 'synthetic-tabular' }, model: { zoo: 'logreg' }, partition: { kind: 'iid', sites: 3 }, security: 'secagg', strategies: [{ name: 'fedavg' }, { name: 'krum' }] }), /strategy krum needs each site's individual update/);
    assert.throws(() => parseSimulationConfig({ name: 'x', data: { source: 'synthetic-tabular' }, model: { zoo: 'logreg' }, partition: { kind: 'iid', sites: 3 }, strategies: [{ name: 'fedprox' }] }), /fedprox needs the option proximalMu/);
    const c = parseSimulationConfig({ name: 'x', data: { source: 'synthetic-tabular' }, model: { zoo: 'logreg' }, partition: { kind: 'iid', sites: 3 } });
    assert.equal(c.transport, 'ws');
    assert.deepEqual(c.strategies, [{ name: 'fedavg' }]);
    assert.deepEqual(c.faults.dropout, {});
  });

  it('Heart Disease with FLamby\'s preprocessing: 303/261/46/130 = 740 records, 13 features, binary target', function () {
    const dir = sharedDataFile('uci_heart_disease');
    if (!dir) return this.skip(); // ../shared/data is for development and CI only
    const sizes = HEART_DISEASE_CENTERS.map((c) => loadHeartDiseaseCenter(dir, c));
    assert.deepEqual(sizes.map((d) => d.y.length), [303, 261, 46, 130]);
    assert.ok(sizes.every((d) => d.exampleShape[0] === HEART_DISEASE_FEATURES.length && d.x.length === d.y.length * 13));
    // FLamby's class counts: cleveland 164/139, hungarian 163/98, switzerland 1/45, va 29/101.
    assert.deepEqual(sizes.map((d) => [d.y.filter((v) => v === 0).length, d.y.filter((v) => v === 1).length]), [[164, 139], [163, 98], [1, 45], [29, 101]]);
  });
});
