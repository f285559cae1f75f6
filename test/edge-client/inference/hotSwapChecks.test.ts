import assert from 'node:assert/strict';
import { zooModel } from '../../../models/zoo.js';
import { HotSwapModel, type SwapChecks } from '../../../edge-client/inference/hotSwapModel.js';
import type { Dataset } from '../../../edge-client/data/dataset.js';
import { modelVersionId } from '../../../shared/model/modelHash.js';
import { layoutOf } from '../../../shared/model/parameterLayout.js';

describe('edge inference: the site policy\'s deployment checks on a swap (real onnxruntime sessions)', function () {
  this.timeout(60_000);
  const spec = zooModel('logreg', { numFeatures: 4 });
  /** A model that always answers `cls` (zero weights, the bias decides). */
  const always = (cls: number, salt: number): Float32Array => {
    const p = new Float32Array(layoutOf(spec).size);
    p[p.length - 2 + cls] = 5;
    p[0] = salt * 1e-6; // a different version id, the same answers
    return p;
  };
  // Local holdout: 8 of 10 examples are class 0.
  const holdout: Dataset = { x: new Float32Array(40).fill(0.5), exampleShape: [4], y: Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 1, 1]), numClasses: 2 };

  it('a coordinator-offered version may not lose more than maxAccuracyDrop against the one serving; the operator\'s own choice may', async () => {
    let checks: SwapChecks = { holdout, maxAccuracyDrop: 0.1 };
    const model = new HotSwapModel({ providers: ['cpu'], intraOpNumThreads: 1 }, () => checks);
    try {
      const good = always(0, 1);
      const bad = always(1, 2);
      await model.swapTo(modelVersionId(spec, good), spec, good, { relative: true });
      assert.equal(model.current!.holdoutAccuracy, 0.8);
      await assert.rejects(model.swapTo(modelVersionId(spec, bad), spec, bad, { relative: true }), /holdout accuracy 0\.2000 is more than 0\.1 below the serving version's 0\.8000 \(site policy deployment\.maxAccuracyDrop\)/);
      assert.equal(model.current!.versionId, modelVersionId(spec, good), 'the good version keeps serving');
      // An equally good one passes; the checks are read at each swap (the policy may change).
      const good2 = always(0, 3);
      await model.swapTo(modelVersionId(spec, good2), spec, good2, { relative: true });
      checks = { holdout, accuracyFloor: 0.5 };
      await assert.rejects(model.swapTo(modelVersionId(spec, bad), spec, bad), /holdout accuracy 0\.2000 is below the floor 0\.5/);
      checks = { holdout, maxAccuracyDrop: 0.1 };
      await model.swapTo(modelVersionId(spec, bad), spec, bad, { relative: false }); // a rollback by hand
      assert.equal(model.current!.versionId, modelVersionId(spec, bad));
    } finally {
      await model.close();
    }
  });
});
