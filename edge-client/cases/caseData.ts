/**
 * The case store as a site's local data: for each round, the labelled cases preprocessed for the
 * round model's input spec, in their stable splits. Cases labelled later join the next round.
 */
import { numClassesOf, type ModelSpec } from '../../shared/model/modelSpec.js';
import type { DatasetSplits } from '../data/dataset.js';
import type { LocalData } from '../data/localData.js';
import { modelInput } from '../dicom/modelInput.js';
import type { CaseStore } from './caseStore.js';

export function caseData(cases: CaseStore, fallback: () => ModelSpec | null): LocalData {
  return {
    splitsFor(spec: ModelSpec | null): DatasetSplits {
      const model = spec ?? fallback();
      if (!model) return caseData.empty(cases.dir);
      return cases.datasets(modelInput(model).hash, model.inputShape, numClassesOf(model));
    },
  };
}

/** No labelled cases (yet). */
caseData.empty = (dir = 'case store'): DatasetSplits => {
  const empty = { x: new Float32Array(0), exampleShape: [1], y: new Int32Array(0), numClasses: 1 };
  return { train: empty, val: empty, test: empty, source: `case store (${dir})` };
};
