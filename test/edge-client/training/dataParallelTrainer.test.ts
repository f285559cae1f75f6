import assert from 'node:assert/strict';
import { zooModel } from '../../../models/zoo.js';
import { initParams } from '../../../shared/model/initParams.js';
import { stratifiedSplit, type Dataset } from '../../../edge-client/data/dataset.js';
import { syntheticImages } from '../../../edge-client/data/syntheticImages.js';
import { DataParallelTrainer, dataParallelFit } from '../../../edge-client/training/dataParallelTrainer.js';
import { localFit } from '../../../edge-client/training/localTrainer.js';
import { initTrainingBackend } from '../../../edge-client/training/trainingBackend.js';

describe('edge-client/training/dataParallelTrainer (worker threads)', function () {
  this.timeout(120_000);
  // Dropout-free model so that one thread and two workers must agree up to summation order.
  const spec = zooModel('mlp-tabular', { numFeatures: 784, numClasses: 3, hidden: [32] });
  const images = syntheticImages({ n: 300, numClasses: 3, seed: 8 });
  const flat: Dataset = { ...images, exampleShape: [784] };
  const [train, val] = stratifiedSplit(flat, [0.8, 0.2], 1);
  const params = initParams(spec, 2);

  before(async () => {
    await initTrainingBackend('wasm');
  });

  for (const optimizer of ['sgd', 'adam'] as const) {
    it(`2 workers give the same parameters as one thread (${optimizer}, uneven last batch)`, async () => {
      const opts = { epochs: 2, batchSize: 25, learningRate: optimizer === 'sgd' ? 0.1 : 0.01, optimizer, seed: 4 };
      const single = await localFit(spec, params, train, opts);
      const parallel = await dataParallelFit(spec, params, train, { ...opts, workers: 2, backend: 'wasm' });
      assert.equal(parallel.workers, 2);
      let maxDiff = 0;
      let moved = 0;
      for (let i = 0; i < params.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(parallel.params[i] - single.params[i]));
        moved = Math.max(moved, Math.abs(single.params[i] - params[i]));
      }
      assert.ok(moved > 1e-2, 'training moved the parameters');
      assert.ok(maxDiff < 1e-4, `max diff ${maxDiff}`);
      assert.ok(Math.abs(parallel.loss - single.loss) < 1e-4, `${parallel.loss} vs ${single.loss}`);
      assert.equal(parallel.numExamples, train.y.length);
    });
  }

  it('a trainer keeps its workers across fits, also for a different model, with the same results', async () => {
    const opts = { epochs: 1, batchSize: 20, learningRate: 0.1, optimizer: 'sgd' as const, seed: 2 };
    const trainer = new DataParallelTrainer({ workers: 2, backend: 'wasm' });
    try {
      const first = await trainer.fit(spec, params, train, opts);
      const logreg = zooModel('logreg', { numFeatures: 784, numClasses: 3 });
      const other = await trainer.fit(logreg, initParams(logreg, 1), train, opts);
      const again = await trainer.fit(spec, params, train, opts);
      assert.equal(other.params.length, 784 * 3 + 3);
      assert.deepEqual(again.params, first.params);
      const fresh = await localFit(spec, params, train, opts);
      for (let i = 0; i < params.length; i++) assert.ok(Math.abs(first.params[i] - fresh.params[i]) < 1e-4);
    } finally {
      await trainer.close();
    }
  });

  it('localFit({ workers: 3 }) trains a CNN on worker threads with validation and model selection', async () => {
    const cnn = zooModel('cnn-28', { numClasses: 3 });
    const [tr, va] = stratifiedSplit(images, [0.8, 0.2], 1);
    const r = await localFit(cnn, initParams(cnn, 1), tr, { epochs: 2, batchSize: 32, learningRate: 0.002, optimizer: 'adam', seed: 1, workers: 3, validation: va, selectBest: true });
    assert.equal(r.history.length, 2);
    assert.ok(r.history.every((h) => h.validation !== undefined));
    assert.ok(r.history[r.selectedEpoch - 1].validation!.accuracy >= 0.8, JSON.stringify(r.history.map((h) => h.validation)));
    void val;
  });
});
