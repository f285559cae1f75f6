/**
 * Signed version manifests: what a published global model is, signed by the coordinator's
 * Ed25519 key (edges pinned it at enrolment). An edge accepts a model only when the manifest's
 * signature verifies and the spec and params it received hash to what the manifest says.
 */
import type { KeyObject } from 'node:crypto';
import { FedmedError } from '../errors.js';
import { signMessage, verifyMessage } from '../secure/identity.js';
import { canonicalJson } from './canonicalJson.js';
import { modelVersionId, paramsSha256, specHash } from './modelHash.js';
import type { ModelSpec } from './modelSpec.js';

export const MANIFEST_DOMAIN = 'fedmed.version-manifest/1';

export interface VersionManifest {
  /** sha256(canonical spec ‖ params). */
  id: string;
  parent: string | null;
  experiment: string;
  round: number;
  specHash: string;
  paramsSha256: string;
  /** Example-weighted evaluation (or training) metrics of the round that produced it. */
  metrics: Record<string, number>;
  createdAt: string;
}

export interface SignedManifest {
  manifest: VersionManifest;
  /** Ed25519 signature (base64url) over the manifest's canonical JSON. */
  signature: string;
}

const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' };
export const MANIFEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'parent', 'experiment', 'round', 'specHash', 'paramsSha256', 'metrics', 'createdAt'],
  properties: {
    id: hex64,
    parent: { anyOf: [hex64, { type: 'null' }] },
    experiment: { type: 'string', minLength: 1, maxLength: 128 },
    round: { type: 'integer', minimum: 0 },
    specHash: hex64,
    paramsSha256: hex64,
    metrics: { type: 'object', maxProperties: 32, additionalProperties: { type: 'number' } },
    createdAt: { type: 'string', maxLength: 64 },
  },
} as const;

/** A manifest whose signature, spec or params do not check out. */
export class ManifestError extends FedmedError {
  constructor(message: string) {
    super('MANIFEST_INVALID', message);
  }
}

export function signManifest(key: KeyObject, manifest: VersionManifest): SignedManifest {
  return { manifest, signature: signMessage(key, MANIFEST_DOMAIN, canonicalJson(manifest)) };
}

/** Throws unless the signature is the pinned coordinator's over exactly this manifest. */
export function verifyManifestSignature(coordinatorKey: KeyObject, signed: SignedManifest): void {
  if (!verifyMessage(coordinatorKey, signed.signature, MANIFEST_DOMAIN, canonicalJson(signed.manifest))) {
    throw new ManifestError(`manifest of version ${String(signed.manifest?.id).slice(0, 12)}… is not signed by the pinned coordinator key (unsigned, mis-signed or altered)`);
  }
}

/** Throws unless `spec` and `params` are exactly the model the manifest describes. */
export function checkModelAgainstManifest(manifest: VersionManifest, spec: ModelSpec, params: Float32Array): void {
  if (specHash(spec) !== manifest.specHash) throw new ManifestError(`version ${manifest.id.slice(0, 12)}…: the model spec does not match the manifest's specHash`);
  const sha = paramsSha256(params);
  if (sha !== manifest.paramsSha256) throw new ManifestError(`version ${manifest.id.slice(0, 12)}…: params hash ${sha.slice(0, 12)}… differs from the signed manifest's ${manifest.paramsSha256.slice(0, 12)}…`);
  if (modelVersionId(spec, params) !== manifest.id) throw new ManifestError(`version ${manifest.id.slice(0, 12)}…: sha256(spec ‖ params) is not the manifest's id`);
}
