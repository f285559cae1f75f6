/** Invalid privacy parameters: refused before any work, never turned into a silent NaN. */
import { FedmedError } from '../errors.js';

export class PrivacyParameterError extends FedmedError {
  constructor(message: string) {
    super('PRIVACY_PARAMETER', message);
  }
}

export function requirePositive(name: string, v: number): void {
  if (!(typeof v === 'number' && Number.isFinite(v) && v > 0)) throw new PrivacyParameterError(`${name} must be a finite number > 0, got ${v}`);
}

/** q in (0, 1]. */
export function requireSamplingRate(q: number): void {
  if (!(typeof q === 'number' && q > 0 && q <= 1)) throw new PrivacyParameterError(`sampling rate q must be in (0, 1], got ${q}`);
}

/** δ in (0, 1). */
export function requireDelta(delta: number): void {
  if (!(typeof delta === 'number' && delta > 0 && delta < 1)) throw new PrivacyParameterError(`delta must be in (0, 1), got ${delta}`);
}

export function requireSteps(steps: number): void {
  if (!(Number.isInteger(steps) && steps >= 0)) throw new PrivacyParameterError(`steps must be a non-negative integer, got ${steps}`);
}
