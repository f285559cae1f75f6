/**
 * Signed version manifests: what a deployed global model is and its place in the federation's
 * release sequence, signed by the coordinator's Ed25519 key and shipped with the coordinator's
 * admin-signed certificate. An edge accepts a model only when the certificate verifies against
 * the admin key it pinned, the manifest's signature against the certified key, its release is
 * not older than the one the edge runs, and the spec and params it received hash to what the
 * manifest says. The bytes of each update are bound too: the coordinator signs their exact
 * length and hash before the edge writes any of them.
 */
import type { KeyObject } from 'node:crypto';
import { FedmedError } from '../errors.js';
import { publicKeyFromB64, signMessage, verifyMessage } from '../secure/identity.js';
import type { CoordinatorCertificate } from '../secure/trust/certificates.js';
import type { FederationTrust } from '../secure/trust/federationTrust.js';
import { canonicalJson } from './canonicalJson.js';
import { modelVersionId, paramsSha256, specHash } from './modelHash.js';
import type { ModelSpec } from './modelSpec.js';

export const MANIFEST_DOMAIN = 'fedmed.version-manifest/2';
export const UPDATE_DOMAIN = 'fedmed.model-update/1';

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
  /** The deployment release this manifest was signed for (grows with every deployment action of the federation). */
  release: number;
  releasedAt: string;
}

export interface SignedManifest {
  manifest: VersionManifest;
  /** Ed25519 signature (base64url) over the manifest's canonical JSON. */
  signature: string;
  /** The admin-signed certificate of the key that signed it. */
  certificate: CoordinatorCertificate;
}

const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' };
export const MANIFEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'parent', 'experiment', 'round', 'specHash', 'paramsSha256', 'metrics', 'createdAt', 'release', 'releasedAt'],
  properties: {
    id: hex64,
    parent: { anyOf: [hex64, { type: 'null' }] },
    experiment: { type: 'string', minLength: 1, maxLength: 128 },
    round: { type: 'integer', minimum: 0 },
    specHash: hex64,
    paramsSha256: hex64,
    metrics: { type: 'object', maxProperties: 32, additionalProperties: { type: 'number' } },
    createdAt: { type: 'string', maxLength: 64 },
    release: { type: 'integer', minimum: 1 },
    releasedAt: { type: 'string', maxLength: 64 },
  },
} as const;

/** A manifest whose signature, spec or params do not check out. */
export class ManifestError extends FedmedError {
  constructor(message: string) {
    super('MANIFEST_INVALID', message);
  }
}

export function signManifest(key: KeyObject, certificate: CoordinatorCertificate, manifest: VersionManifest): SignedManifest {
  return { manifest, signature: signMessage(key, MANIFEST_DOMAIN, canonicalJson(manifest)), certificate };
}

/**
 * Throws unless the manifest is signed by a coordinator key the federation admin certified:
 * valid now (`at` omitted: a new offer), or when it was released (`at: 'release'`: a version
 * stored earlier, re-checked at start or on rollback).
 */
export function verifyManifestSignature(trust: FederationTrust, signed: SignedManifest, o: { at?: 'now' | 'release' } = {}): void {
  const what = `manifest of version ${String(signed.manifest?.id).slice(0, 12)}…`;
  let key: KeyObject;
  try {
    const at = o.at === 'release' ? Date.parse(signed.manifest.releasedAt) : Date.now();
    key = publicKeyFromB64(trust.coordinator(signed.certificate, { at }).publicKey);
  } catch (err) {
    throw new ManifestError(`${what}: its signer's certificate is refused (${(err as Error).message})`);
  }
  if (!verifyMessage(key, signed.signature, MANIFEST_DOMAIN, canonicalJson(signed.manifest))) {
    throw new ManifestError(`${what} is not signed by the certified coordinator key (unsigned, mis-signed or altered)`);
  }
}

/** What the coordinator signs about one update's bytes before sending them. */
export interface UpdateDescriptor {
  version: string;
  base: string | null;
  totalBytes: number;
  sha256: string;
}

function updateText(d: UpdateDescriptor): string[] {
  return [d.version, d.base ?? '-', String(d.totalBytes), d.sha256];
}

export function signUpdate(key: KeyObject, d: UpdateDescriptor): string {
  return signMessage(key, UPDATE_DOMAIN, ...updateText(d));
}

export function verifyUpdate(key: KeyObject, d: UpdateDescriptor, signature: string): boolean {
  return verifyMessage(key, signature, UPDATE_DOMAIN, ...updateText(d));
}

/** Throws unless `spec` and `params` are exactly the model the manifest describes. */
export function checkModelAgainstManifest(manifest: VersionManifest, spec: ModelSpec, params: Float32Array): void {
  if (specHash(spec) !== manifest.specHash) throw new ManifestError(`version ${manifest.id.slice(0, 12)}…: the model spec does not match the manifest's specHash`);
  const sha = paramsSha256(params);
  if (sha !== manifest.paramsSha256) throw new ManifestError(`version ${manifest.id.slice(0, 12)}…: params hash ${sha.slice(0, 12)}… differs from the signed manifest's ${manifest.paramsSha256.slice(0, 12)}…`);
  if (modelVersionId(spec, params) !== manifest.id) throw new ManifestError(`version ${manifest.id.slice(0, 12)}…: sha256(spec ‖ params) is not the manifest's id`);
}
