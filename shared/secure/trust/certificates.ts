/**
 * What the federation admin signs with the admin key (kept off the coordinator), and how:
 *
 *   coordinator certificate   the coordinator's Ed25519 key and the URL(s) it serves, for a period
 *   site certificate          a site's name, Ed25519 identity key and X25519 encryption key
 *   revocation list           serials no longer valid, with a sequence number that only grows
 *   CKKS key set              a key set's id and public parameters
 *   CKKS key grant            "this wrapped copy of the key set is for this site's encryption key"
 *
 * Each is a JSON body plus an Ed25519 signature over its canonical JSON, domain-separated by
 * its `kind` (a signature on one kind is useless as another). Every body names its federation
 * (the admin key's fingerprint). Verification is in federationTrust.ts.
 */
import { randomBytes, type KeyObject } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import { canonicalJson } from '../../model/canonicalJson.js';
import { CKKS_PARAMETERS_SCHEMA, type CkksParameters } from '../ckks/ckksParams.js';
import { signMessage } from '../identity.js';
import { TrustError } from './trustError.js';

export const COORDINATOR_CERTIFICATE = 'fedmed.coordinator-certificate/1';
export const SITE_CERTIFICATE = 'fedmed.site-certificate/1';
export const REVOCATION_LIST = 'fedmed.revocation-list/1';
export const CKKS_KEY_SET = 'fedmed.ckks-key-set/1';
export const CKKS_KEY_GRANT = 'fedmed.ckks-key-grant/1';

/** A body and the admin's signature over it. */
export interface Signed<T> {
  body: T;
  /** Ed25519 (base64url) over `kind` ‖ canonical JSON of `body`. */
  signature: string;
}

interface Validity {
  /** 32 hex digits, unique per certificate: what a revocation names. */
  serial: string;
  issuedAt: string;
  notBefore: string;
  notAfter: string;
}

export interface CoordinatorCertificateBody extends Validity {
  kind: typeof COORDINATOR_CERTIFICATE;
  /** Fingerprint of the admin key that issued it. */
  federation: string;
  /** The coordinator's Ed25519 public key (base64url): challenges, manifests and model updates are signed with it. */
  publicKey: string;
  /** Origins the coordinator serves (`https://fl.example.org:8700`); a site refuses any other. */
  urls: string[];
}

export interface SiteCertificateBody extends Validity {
  kind: typeof SITE_CERTIFICATE;
  federation: string;
  site: string;
  /** Ed25519 identity key (base64url): the site's handshake and SecAgg+ signatures. */
  identityKey: string;
  /** X25519 encryption key (base64url): what CKKS keys are wrapped to. */
  encryptionKey: string;
}

export interface RevokedEntry {
  serial: string;
  /** What the serial was issued to ("site hosp-a", "coordinator"), for people reading the list. */
  subject: string;
  revokedAt: string;
  reason?: string;
}

export interface RevocationListBody {
  kind: typeof REVOCATION_LIST;
  federation: string;
  /** Grows by one with every list the admin signs; sites refuse a list older than one they hold. */
  sequence: number;
  issuedAt: string;
  revoked: RevokedEntry[];
}

export interface CkksKeySetBody {
  kind: typeof CKKS_KEY_SET;
  federation: string;
  keySet: string;
  parameters: CkksParameters;
  issuedAt: string;
}

export interface CkksKeyGrantBody {
  kind: typeof CKKS_KEY_GRANT;
  federation: string;
  keySet: string;
  site: string;
  /** The site encryption key the secret key was wrapped to (from its site certificate). */
  encryptionKey: string;
  /** SHA-256 (hex) of the wrapped key bytes. */
  wrappedSha256: string;
  issuedAt: string;
}

export type CoordinatorCertificate = Signed<CoordinatorCertificateBody>;
export type SiteCertificate = Signed<SiteCertificateBody>;
export type RevocationList = Signed<RevocationListBody>;
export type CkksKeySetCertificate = Signed<CkksKeySetBody>;
export type CkksKeyGrant = Signed<CkksKeyGrantBody>;

const key32 = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' };
const hex32 = { type: 'string', pattern: '^[0-9a-f]{32}$' };
const time = { type: 'string', minLength: 10, maxLength: 40 };
const siteName = { type: 'string', pattern: '^[A-Za-z0-9._-]{1,64}$' };
const validity = { serial: hex32, issuedAt: time, notBefore: time, notAfter: time };
const validityRequired = ['serial', 'issuedAt', 'notBefore', 'notAfter'];

function body(kind: string, properties: Record<string, unknown>, required: string[]): object {
  return { type: 'object', additionalProperties: false, required: ['kind', 'federation', ...required], properties: { kind: { const: kind }, federation: key32, ...properties } };
}

export const BODY_SCHEMAS = {
  [COORDINATOR_CERTIFICATE]: body(COORDINATOR_CERTIFICATE, { ...validity, publicKey: key32, urls: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'string', maxLength: 300 } } }, [...validityRequired, 'publicKey', 'urls']),
  [SITE_CERTIFICATE]: body(SITE_CERTIFICATE, { ...validity, site: siteName, identityKey: key32, encryptionKey: key32 }, [...validityRequired, 'site', 'identityKey', 'encryptionKey']),
  [REVOCATION_LIST]: body(
    REVOCATION_LIST,
    {
      sequence: { type: 'integer', minimum: 1 },
      issuedAt: time,
      revoked: { type: 'array', maxItems: 100_000, items: { type: 'object', additionalProperties: false, required: ['serial', 'subject', 'revokedAt'], properties: { serial: hex32, subject: { type: 'string', maxLength: 200 }, revokedAt: time, reason: { type: 'string', maxLength: 500 } } } },
    },
    ['sequence', 'issuedAt', 'revoked'],
  ),
  [CKKS_KEY_SET]: body(CKKS_KEY_SET, { keySet: hex32, parameters: CKKS_PARAMETERS_SCHEMA, issuedAt: time }, ['keySet', 'parameters', 'issuedAt']),
  [CKKS_KEY_GRANT]: body(CKKS_KEY_GRANT, { keySet: hex32, site: siteName, encryptionKey: key32, wrappedSha256: { type: 'string', pattern: '^[0-9a-f]{64}$' }, issuedAt: time }, ['keySet', 'site', 'encryptionKey', 'wrappedSha256', 'issuedAt']),
} as const;

export type DocumentKind = keyof typeof BODY_SCHEMAS;
interface BodyOf {
  [COORDINATOR_CERTIFICATE]: CoordinatorCertificateBody;
  [SITE_CERTIFICATE]: SiteCertificateBody;
  [REVOCATION_LIST]: RevocationListBody;
  [CKKS_KEY_SET]: CkksKeySetBody;
  [CKKS_KEY_GRANT]: CkksKeyGrantBody;
}

/** Schema of a signed document of any kind on the wire and in REST bodies (the body is checked per kind on verification). */
export const SIGNED_DOCUMENT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['body', 'signature'],
  properties: { body: { type: 'object' }, signature: { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' } },
} as const;

const ajv = new Ajv({ allErrors: false, strict: true });
const validators = Object.fromEntries(Object.entries(BODY_SCHEMAS).map(([k, s]) => [k, ajv.compile(s)])) as Record<DocumentKind, ValidateFunction>;

/** The signed text of a body (what the signature covers). */
export function signedText(body: { kind: string }): [string, string] {
  return [body.kind, canonicalJson(body)];
}

/** Checks a signed document's shape for `kind`; throws TrustError('malformed') naming what is wrong. */
export function checkShape<K extends DocumentKind>(kind: K, doc: unknown, what: string): Signed<BodyOf[K]> {
  const d = doc as Partial<Signed<unknown>> | null;
  if (typeof d !== 'object' || d === null || typeof d.signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(d.signature) || typeof d.body !== 'object' || d.body === null) {
    throw new TrustError('malformed', `${what} is not a signed fedmed document ({body, signature})`);
  }
  const validate = validators[kind];
  if (!validate(d.body)) {
    const e = validate.errors?.[0];
    throw new TrustError('malformed', `${what} is not a valid ${kind}: ${e?.instancePath || '(body)'} ${e?.message ?? 'is invalid'}`);
  }
  return d as Signed<BodyOf[K]>;
}

export function newSerial(): string {
  return randomBytes(16).toString('hex');
}

/** Signs a body with the admin key (the admin's machine only). */
export function signDocument<T extends { kind: string }>(adminKey: KeyObject, body: T): Signed<T> {
  return { body, signature: signMessage(adminKey, ...signedText(body)) };
}

/** A validity period from now for `days` (5 minutes back, for clocks slightly behind). */
export function validityFor(days: number, now = Date.now()): Omit<Validity, 'serial'> {
  return { issuedAt: new Date(now).toISOString(), notBefore: new Date(now - 5 * 60_000).toISOString(), notAfter: new Date(now + days * 86_400_000).toISOString() };
}

/** The origin a certificate names for a URL (scheme, host, port; no path). */
export function urlOrigin(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TrustError('malformed', `"${url}" is not a URL`);
  }
  // ws(s) and http(s) name the same server.
  const scheme = u.protocol === 'wss:' ? 'https:' : u.protocol === 'ws:' ? 'http:' : u.protocol;
  return `${scheme}//${u.host}`;
}
