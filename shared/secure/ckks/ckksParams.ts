/**
 * The CKKS parameters fedmed uses and what a round tells its sites. One parameter set: SEAL's
 * default 128-bit-secure modulus table allows 218 bits at N = 8192; [60, 40, 40, 60] uses 200.
 * Sites encrypt at the last level of the chain (only the first 60-bit prime left) with their
 * secret key and send seed-compressed ciphertexts: half the bytes of a full ciphertext (c1 is
 * re-expanded from a seed) and 4x a float32 vector. The coordinator only adds ciphertexts, which
 * needs no key at all. A value v is stored as round(v * 2^40) mod q0 (q0 < 2^60), so every
 * slot of the SUM must stay below 2^19 in magnitude: sites clip each coordinate to `range` and
 * cap their weight so that sites * maxWeight * range <= 2^18 (half the room, for noise).
 */
import { CkksError } from './ckksErrors.js';

export const CKKS_POLY_MODULUS_DEGREE = 8192;
export const CKKS_COEFF_MODULUS_BITS = [60, 40, 40, 60] as const;
export const CKKS_SCALE_BITS = 40;
/** Values per ciphertext. */
export const CKKS_SLOTS = CKKS_POLY_MODULUS_DEGREE / 2;
/** Largest |slot| of an aggregate we allow (2^18 of the 2^19 the last level holds). */
export const CKKS_SUM_BOUND = 2 ** 18;

/** The public description of a key set (what every party needs to rebuild the SEAL context). */
export interface CkksParameters {
  scheme: 'ckks';
  polyModulusDegree: number;
  coeffModulusBits: number[];
  scaleBits: number;
}

export const FEDMED_CKKS_PARAMETERS: CkksParameters = {
  scheme: 'ckks',
  polyModulusDegree: CKKS_POLY_MODULUS_DEGREE,
  coeffModulusBits: [...CKKS_COEFF_MODULUS_BITS],
  scaleBits: CKKS_SCALE_BITS,
};

export const CKKS_PARAMETERS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['scheme', 'polyModulusDegree', 'coeffModulusBits', 'scaleBits'],
  properties: {
    scheme: { const: 'ckks' },
    polyModulusDegree: { const: CKKS_POLY_MODULUS_DEGREE },
    coeffModulusBits: { type: 'array', minItems: 4, maxItems: 4, items: { type: 'integer' } },
    scaleBits: { const: CKKS_SCALE_BITS },
  },
} as const;

/** Throws unless `p` is the parameter set this build supports. */
export function checkCkksParameters(p: CkksParameters, what = 'key set'): void {
  const ok =
    p.scheme === 'ckks' &&
    p.polyModulusDegree === CKKS_POLY_MODULUS_DEGREE &&
    p.scaleBits === CKKS_SCALE_BITS &&
    p.coeffModulusBits.length === CKKS_COEFF_MODULUS_BITS.length &&
    p.coeffModulusBits.every((b, i) => b === CKKS_COEFF_MODULUS_BITS[i]);
  if (!ok) throw new CkksError(`${what} uses CKKS parameters ${JSON.stringify(p)}; this fedmed supports N=${CKKS_POLY_MODULUS_DEGREE}, coeff [${CKKS_COEFF_MODULUS_BITS.join(', ')}], scale 2^${CKKS_SCALE_BITS}`);
}

/** An experiment's `ckks` block. */
export interface CkksConfig {
  /** The key set to encrypt with (default: the newest when the experiment is created). */
  keySet?: string;
  /** Every coordinate of an update is clipped to [-range, range] before weighting. */
  range?: number;
}

export const CKKS_DEFAULTS = { range: 1 } as const;

export const CKKS_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    keySet: { type: 'string', pattern: '^[0-9a-f]{32}$' },
    range: { type: 'number', exclusiveMinimum: 0, maximum: 65536 },
  },
} as const;

/** What every site of a CKKS round needs (sent in fit_ins). */
export interface CkksRoundParams {
  mode: 'ckks';
  keySet: string;
  range: number;
  /** Example counts are capped at this weight (1: equal weights, as under DP). */
  maxWeight: number;
}

export const CKKS_ROUND_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['mode', 'keySet', 'range', 'maxWeight'],
  properties: {
    mode: { const: 'ckks' },
    keySet: CKKS_CONFIG_SCHEMA.properties.keySet,
    range: CKKS_CONFIG_SCHEMA.properties.range,
    maxWeight: { type: 'integer', minimum: 1 },
  },
} as const;

/** The largest per-site weight that keeps the sum of `sites` updates within the bound. */
export function ckksMaxWeight(sites: number, range: number): number {
  return Math.floor(CKKS_SUM_BOUND / (sites * Math.max(1, range)));
}

/** Ciphertexts needed for `length` values. */
export function ciphertextCount(length: number): number {
  return Math.ceil(length / CKKS_SLOTS);
}
