/**
 * What a site trains and evaluates on. Either a fixed data set loaded at start (`--data FILE`),
 * or one that grows while the edge runs — the case store, whose labelled cases are read afresh
 * for each round and for each model's input spec (edge-client/cases/caseData.ts).
 */
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import type { DatasetSplits } from './dataset.js';

export interface LocalData {
  /** The splits for a model of this spec, as they stand now (null: the spec is not known or not readable). */
  splitsFor(spec: ModelSpec | null): DatasetSplits;
}

/** A data set given at start: the same splits for every model. */
export function fixedData(splits: DatasetSplits): LocalData {
  return { splitsFor: () => splits };
}

export function isLocalData(d: DatasetSplits | LocalData): d is LocalData {
  return typeof (d as LocalData).splitsFor === 'function';
}
