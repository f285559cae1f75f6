/** Names of the tfjs training backends, in the default order of preference (no tfjs import here). */
import { UsageError } from '../../shared/errors.js';

export const TRAINING_BACKENDS = ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] as const;
export type TrainingBackendName = (typeof TRAINING_BACKENDS)[number];

export function parseTrainingBackend(text: string): TrainingBackendName {
  if (!(TRAINING_BACKENDS as readonly string[]).includes(text)) throw new UsageError(`unknown training backend "${text}"; choose one of ${TRAINING_BACKENDS.join(', ')}`);
  return text as TrainingBackendName;
}
