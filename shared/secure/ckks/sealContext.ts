/**
 * The SEAL runtime (node-seal, WebAssembly) with fedmed's CKKS context, loaded once per process
 * and only when a CKKS round needs it. Holds the objects every party shares: the context, the
 * CKKS encoder and the evaluator (additions need no key).
 */
import type { CKKSEncoder, Evaluator, MainModule, ParmsIdType, SEALContext } from 'node-seal';
import { CKKS_COEFF_MODULUS_BITS, CKKS_POLY_MODULUS_DEGREE, CKKS_SCALE_BITS, CKKS_SLOTS } from './ckksParams.js';
import { CkksError } from './ckksErrors.js';

export interface CkksContext {
  seal: MainModule;
  context: SEALContext;
  encoder: CKKSEncoder;
  evaluator: Evaluator;
  /** Where sites encrypt and the coordinator adds: the last level (one 60-bit prime). */
  lastParmsId: ParmsIdType;
  scale: number;
  slots: number;
}

let loading: Promise<CkksContext> | null = null;

export function ckksContext(): Promise<CkksContext> {
  loading ??= load();
  return loading;
}

async function load(): Promise<CkksContext> {
  const { default: SEAL } = await import('node-seal');
  const seal = await SEAL();
  const parms = new seal.EncryptionParameters(seal.SchemeType.ckks);
  parms.setPolyModulusDegree(CKKS_POLY_MODULUS_DEGREE);
  parms.setCoeffModulus(seal.CoeffModulus.Create(CKKS_POLY_MODULUS_DEGREE, Int32Array.from(CKKS_COEFF_MODULUS_BITS)));
  // Enforces 128-bit security against SEAL's modulus tables (throws otherwise).
  const context = new seal.SEALContext(parms, true, seal.SecLevelType.tc128);
  if (!context.parametersSet()) throw new CkksError('SEAL refused fedmed\'s CKKS parameters');
  const encoder = new seal.CKKSEncoder(context);
  if (encoder.slotCount() !== CKKS_SLOTS) throw new CkksError(`SEAL reports ${encoder.slotCount()} CKKS slots, expected ${CKKS_SLOTS}`);
  return { seal, context, encoder, evaluator: new seal.Evaluator(context), lastParmsId: context.lastParmsId(), scale: 2 ** CKKS_SCALE_BITS, slots: CKKS_SLOTS };
}

/** Whether two parms ids are the same (SEAL exposes them as 4 x u64). */
export function sameParmsId(a: ParmsIdType, b: ParmsIdType): boolean {
  const x = a.values() as BigUint64Array;
  const y = b.values() as BigUint64Array;
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/**
 * node-seal's bindings accept a plain Uint8Array only, not a subclass such as Node's Buffer
 * (which network payloads are): a view of the same bytes, no copy.
 */
export function sealBytes(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
