/**
 * The input spec a model takes DICOM in with: the one its ModelSpec carries (`input`, part of
 * the signed version), or the default for its input shape. Cases are preprocessed for one spec
 * and tagged with its hash; training, evaluation and inference use only cases of their model's.
 */
import { defaultInputSpec, inputSpecHash, type InputSpec } from '../../shared/model/inputSpec.js';
import type { ModelSpec } from '../../shared/model/modelSpec.js';

export interface ModelInput {
  spec: InputSpec;
  hash: string;
  /** One example's shape, [h, w, c]: the model's input shape. */
  shape: number[];
}

export function modelInput(model: Pick<ModelSpec, 'inputShape' | 'input'>): ModelInput {
  const spec = model.input ?? defaultInputSpec(model.inputShape);
  return { spec, hash: inputSpecHash(spec), shape: [...model.inputShape] };
}
