/**
 * Content addressing: spec hash, params hash and model version id = sha256(spec || params).
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonicalJson.js';
import type { ModelSpec } from './modelSpec.js';

export function specHash(spec: ModelSpec): string {
  return createHash('sha256').update(canonicalJson(spec)).digest('hex');
}

/** SHA-256 of the params' little-endian float32 bytes. */
export function paramsSha256(params: Float32Array): string {
  return createHash('sha256').update(float32Bytes(params)).digest('hex');
}

/** Immutable id of a model version: sha256(canonical spec JSON || params bytes). */
export function modelVersionId(spec: ModelSpec, params: Float32Array): string {
  return createHash('sha256').update(canonicalJson(spec)).update(float32Bytes(params)).digest('hex');
}

/**
 * Both hashes of a new version, in one pass over its parameters: each block is fed to the id's
 * hash and to the params hash while it is in cache (with a 1M-parameter model the two separate
 * passes cost twice the memory traffic of the coordinator's busiest moment).
 */
export function versionHashes(spec: ModelSpec, params: Float32Array): { id: string; paramsSha256: string } {
  const id = createHash('sha256').update(canonicalJson(spec));
  const sha = createHash('sha256');
  const bytes = float32Bytes(params);
  for (let at = 0; at < bytes.byteLength; at += HASH_BLOCK) {
    const block = bytes.subarray(at, at + HASH_BLOCK);
    id.update(block);
    sha.update(block);
  }
  return { id: id.digest('hex'), paramsSha256: sha.digest('hex') };
}

const HASH_BLOCK = 64 * 1024;

/**
 * Id of a CKKS version, which nobody can hash the parameters of without the key: it names the
 * encrypted aggregate and the version it applies to, so a chain of ids pins every ciphertext.
 */
export function encryptedVersionId(spec: ModelSpec, parent: string, aggregateSha256: string): string {
  return createHash('sha256').update(`fedmed-ckks-version-v1\n${specHash(spec)}\n${parent}\n${aggregateSha256}`).digest('hex');
}

/** The params' bytes, little-endian (the machines we target are little-endian; checked here). */
export function float32Bytes(params: Float32Array): Uint8Array {
  return new Uint8Array(params.buffer, params.byteOffset, params.byteLength);
}

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('fedmed requires a little-endian machine');
}
