/**
 * Message types of the edge <-> coordinator protocol, their JSON schemas, and validation.
 * A frame's header is one of these; large binary data (parameters, deltas) rides in the frame
 * payload. The same schema objects can be used by fastify routes.
 *
 * Session (edge-client/federation/edgeHandshake.ts): edge `hello` -> coordinator `challenge`
 * (the admin-signed coordinator certificate, the newest revocation list, and the coordinator's
 * signature over the site, a fresh nonce and the TLS channel binding, which the edge checks
 * against the admin key it pinned) -> edge `auth` (its signature over the same, with its
 * enrolled key) -> `welcome`. `revocations` brings a newer admin-signed revocation list.
 * Rounds: `fit_ins` (+ global params) -> `fit_res` (+ delta) or `fit_failed`; `eval_ins`
 * (+ params) -> `eval_res` or `eval_failed` (e.g. the site's policy withholds the metrics).
 * Either side may send `heartbeat`.
 *
 * SecAgg+ rounds (`fit_ins.security.mode = "secagg"`) add, between fit_ins and fit_res:
 * `secagg_keys` (site's signed X25519 keys) -> `secagg_roster` (its neighbours' keys, each with
 * the neighbour's admin-signed site certificate, and what the site needs to recompute the
 * graph) -> `secagg_shares` (sealed Shamir shares for each neighbour) -> `secagg_relay` (the
 * boxes meant for this site); `fit_res` then carries the masked vector (signed); after the fit
 * phase the consistency round: `secagg_consistency` (the survivor set) -> `secagg_consistency_sig`
 * (the site's signature on it); then `secagg_unmask` (who survived, who dropped, and the group's
 * signatures on the survivor set) -> `secagg_unmask_res` (the shares that permits).
 *
 * CKKS rounds (`fit_ins.ckks`): the coordinator cannot read the global model, so `fit_ins` and
 * `eval_ins` carry no parameters; the edge brings its copy up to `modelVersion` with
 * `ckks_fetch` -> `ckks_chain` (the encrypted aggregates since the version it holds, + the
 * plaintext initial model if it holds none), fetching its wrapped secret key once with
 * `ckks_key_req` -> `ckks_key` (+ the wrapped key, the admin's signed key set and grant);
 * `fit_res` carries its encrypted update. `ckks_refused` answers a request the coordinator
 * cannot serve.
 *
 * Model OTA (deployment of a version to a site's inference service): `model_offer` (the signed
 * manifest, the signer's certificate and the spec of the version this site should run) ->
 * `model_fetch` (from byte `offset` of the update against the version the edge holds, so a cut
 * download resumes) -> `model_chunk`s (+ bytes of the update; each names the update's signed
 * length and hash) -> `model_status` (active, refused with the reason, rolled back).
 *
 * Audit anchoring (shared/audit/auditHead.ts): `audit_head` in either direction carries the
 * sender's signed audit chain head — from the coordinator (its certified key) at each site's
 * connection, at each round's start and end and periodically; from a site (its enrolled key)
 * after it recorded a coordinator head and after each result it sends. Each side checks the
 * signature and records the head in its own audit log.
 *
 * Readiness (`data_status`, site -> coordinator): how many labelled examples the site holds for
 * its serving model's input spec, released as its policy releases example counts (exact,
 * bucketed, or withheld with only `ready`), sent after each connection and when the counts
 * change, at most once per interval; the coordinator keeps the last one and drops a flood.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { CloseCode, ProtocolError } from './protocolError.js';
import { ROUND_PRIVACY_SCHEMA, type RoundPrivacy } from '../privacy/privacyConfig.js';
import { SECAGG_ROUND_SCHEMA, type SecAggRoundParams } from '../secure/secagg/secaggParams.js';
import { MANIFEST_SCHEMA, type SignedManifest } from '../model/versionManifest.js';
import { SIGNED_DOCUMENT_SCHEMA, type CkksKeyGrant, type CkksKeySetCertificate, type CoordinatorCertificate, type RevocationList, type SiteCertificate } from '../secure/trust/certificates.js';
import { CKKS_PARAMETERS_SCHEMA, CKKS_ROUND_SCHEMA, type CkksParameters, type CkksRoundParams } from '../secure/ckks/ckksParams.js';

/**
 * 4: federation certificates (the admin key is the trust anchor; earlier versions trusted the
 * coordinator key pinned at enrolment and are no longer spoken).
 */
export const PROTOCOL_VERSIONS = [4] as const;
export const AUTH_DOMAIN = 'fedmed-edge-auth-v2';
export const CHALLENGE_DOMAIN = 'fedmed-coordinator-challenge-v2';

export interface FitConfig {
  epochs: number;
  batchSize: number;
  learningRate: number;
  optimizer: 'sgd' | 'adam';
  proxMu: number;
  seed: number;
  /**
   * Local steps (mini-batches) per round instead of epochs: every site then takes the same
   * number of optimiser steps, so example-weighted FedAvg weights each site's data like pooled
   * training does (with epochs, a site's update grows with its size and large sites count
   * twice: once in their steps, once in their weight). FLamby's setting.
   */
  steps?: number;
}

/** What a site reports of its training or evaluation; a site's policy may withhold any of it. */
export interface SiteMetrics {
  loss?: number;
  accuracy?: number;
  auc?: number;
}

export type Message =
  | { type: 'hello'; site: string; versions: number[] }
  | { type: 'challenge'; version: number; nonce: string; signature: string; certificate: CoordinatorCertificate; revocations?: RevocationList }
  | { type: 'revocations'; list: RevocationList }
  | { type: 'auth'; signature: string }
  | { type: 'welcome'; site: string; heartbeatMs: number }
  | { type: 'heartbeat'; t: number }
  | { type: 'fit_ins'; experiment: string; round: number; modelVersion: string; spec: unknown; config: FitConfig; privacy?: RoundPrivacy; security?: SecAggRoundParams; ckks?: CkksRoundParams }
  /**
   * clipIndicator: adaptive clipping's noised bit (1 = the update fitted under the clip).
   * signature: SecAgg+ only — the site's Ed25519 signature over this header and the masked payload.
   */
  | { type: 'fit_res'; experiment: string; round: number; numExamples: number; metrics: SiteMetrics; clipIndicator?: number; signature?: string }
  /**
   * refused: set when the site declined the round on purpose (its policy), not because something
   * broke; the coordinator groups refusals by kind in the round's failure and shows them per site.
   */
  | { type: 'fit_failed'; experiment: string; round: number; reason: string; refused?: RefusalKind }
  | { type: 'eval_ins'; experiment: string; round: number; modelVersion: string; spec: unknown; ckksKeySet?: string }
  | { type: 'eval_res'; experiment: string; round: number; numExamples: number; metrics: SiteMetrics }
  | { type: 'eval_failed'; experiment: string; round: number; reason: string; refused?: RefusalKind }
  | { type: 'round_cancel'; experiment: string; round: number; reason: string }
  | ({ type: 'secagg_keys' } & SecAggSession & SecAggKeys & { signature: string })
  /** participants: every site whose keys were accepted (U1), sorted; with `neighbours` and the session they determine the graph. */
  | ({ type: 'secagg_roster' } & SecAggSession & { threshold: number; neighbours: number; participants: string[]; members: SecAggMember[] })
  | ({ type: 'secagg_shares' } & SecAggSession & { boxes: { to: string; box: string }[]; signature: string })
  | ({ type: 'secagg_relay' } & SecAggSession & { boxes: { from: string; box: string }[] })
  /** survivors: every site whose masked input is in the sum (U3), sorted. */
  | ({ type: 'secagg_consistency' } & SecAggSession & { survivors: string[] })
  | ({ type: 'secagg_consistency_sig' } & SecAggSession & { signature: string })
  /** signatures: this site's group members' signatures on the survivor set of the consistency round. */
  | ({ type: 'secagg_unmask' } & SecAggSession & { survivors: string[]; dropped: string[]; signatures: { site: string; signature: string }[] })
  /** A site that refuses a SecAgg+ message says so (the coordinator stops waiting for it in this round). */
  | ({ type: 'secagg_refused' } & SecAggSession & { reason: string })
  | ({ type: 'secagg_unmask_res' } & SecAggSession & { seedShares: { of: string; share: string }[]; keyShares: { of: string; share: string }[]; signature: string })
  | { type: 'ckks_key_req'; keySet: string }
  | { type: 'ckks_key'; keySet: string; parameters: CkksParameters; certificate: CkksKeySetCertificate; grant: CkksKeyGrant }
  | { type: 'ckks_fetch'; experiment: string; have: string | null; want: string }
  /** links: the encrypted aggregates in order (oldest first), their bytes in the payload after `initialBytes` of plaintext initial model. */
  | { type: 'ckks_chain'; experiment: string; want: string; base: string | null; initialBytes: number; links: { version: string; parent: string; bytes: number }[] }
  | { type: 'ckks_refused'; request: 'key' | 'chain'; id: string; reason: string }
  | ({ type: 'model_offer' } & SignedManifest & { spec: unknown })
  | { type: 'model_fetch'; version: string; base: string | null; offset: number }
  /** signature: the coordinator's over (version, base, totalBytes, sha256) — the update's exact length and hash. */
  | { type: 'model_chunk'; version: string; base: string | null; offset: number; totalBytes: number; sha256: string; signature: string }
  | { type: 'model_status'; version: string; status: ModelStatus; reason?: string }
  /** The sender's signed audit chain head: the seq and hash of its log's last entry, when it was signed. */
  | { type: 'audit_head'; seq: number; hash: string; at: string; signature: string }
  | ({ type: 'data_status' } & DataStatus);

/**
 * A site's readiness, as its policy lets it out (edge-client/policy/siteRules.ts dataStatus):
 * `examples` per split (null: withheld), `ready` = at least `minExamples` training examples.
 */
export interface DataStatus {
  examples: { train: number; validation: number; test: number } | null;
  release: 'exact' | 'bucketed' | 'withheld';
  ready: boolean;
  minExamples: number;
}

/** What an edge reports about a version it was offered. */
/** held: stored and verified, not serving: the site's policy deploys only by its operator's hand. */
export type ModelStatus = 'downloading' | 'active' | 'held' | 'refused' | 'rolled_back';

export interface SecAggSession {
  experiment: string;
  round: number;
  session: string;
}

/** A site's advertised keys: for sealing shares (c), for pairwise masks (s), and a commitment to its self-mask seed. */
export interface SecAggKeys {
  cPk: string;
  sPk: string;
  seedCommitment: string;
}

/** One roster entry: a site's signed keys and its admin-signed certificate (whose identity key checks the signature). */
export interface SecAggMember extends SecAggKeys {
  site: string;
  certificate: SiteCertificate;
  signature: string;
}

/** Why a site declined a round (`fit_failed.refused`). */
export const REFUSAL_KINDS = ['privacy_budget', 'approval_pending', 'experiment_rejected', 'policy'] as const;
export type RefusalKind = (typeof REFUSAL_KINDS)[number];

export type MessageType = Message['type'];
export type MessageOf<T extends MessageType> = Extract<Message, { type: T }>;

const id = { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9._-]+$' };
const b64 = { type: 'string', minLength: 1, maxLength: 256, pattern: '^[A-Za-z0-9_-]+$' };
const round = { type: 'integer', minimum: 1, maximum: 1_000_000 };
const finite = { type: 'number' };
const count = { type: 'integer', minimum: 0, maximum: 1_000_000_000 };
const metrics = {
  type: 'object',
  required: [],
  additionalProperties: false,
  properties: { loss: finite, accuracy: { type: 'number', minimum: 0, maximum: 1 }, auc: finite },
};
const experimentRound = { experiment: id, round };
const key32 = { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' };
const signature = { type: 'string', pattern: '^[A-Za-z0-9_-]{86}$' };
const session = { ...experimentRound, session: SECAGG_ROUND_SCHEMA.properties.session };
const sessionRequired = ['experiment', 'round', 'session'];
const keysProperties = { cPk: key32, sPk: key32, seedCommitment: key32 };
const siteList = { type: 'array', maxItems: 255, uniqueItems: true, items: id };
const shareList = { type: 'array', maxItems: 255, items: { type: 'object', additionalProperties: false, required: ['of', 'share'], properties: { of: id, share: { type: 'string', pattern: '^[A-Za-z0-9_-]{44}$' } } } };
const box = { type: 'string', pattern: '^[A-Za-z0-9_-]{126}$' };
const hex64 = { type: 'string', pattern: '^[0-9a-f]{64}$' };
const isoTime = { type: 'string', maxLength: 40, pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2})$' };
const signedDocument = SIGNED_DOCUMENT_SCHEMA;
const signatures = { type: 'array', maxItems: 255, items: { type: 'object', additionalProperties: false, required: ['site', 'signature'], properties: { site: id, signature } } };

/**
 * Local training hyper-parameters: the same schema validates `fit_ins.config` on the wire and
 * the `fit` block of an experiment created through the REST API (there without `seed`, which
 * the strategy derives per round).
 */
export const FIT_CONFIG_PROPERTIES = {
  epochs: { type: 'integer', minimum: 1, maximum: 1000 },
  batchSize: { type: 'integer', minimum: 1, maximum: 65536 },
  learningRate: { type: 'number', exclusiveMinimum: 0 },
  optimizer: { enum: ['sgd', 'adam'] },
  proxMu: { type: 'number', minimum: 0 },
  steps: { type: 'integer', minimum: 1, maximum: 1000000 },
} as const;

function schema(type: MessageType, properties: Record<string, unknown>, required: string[]): object {
  return { type: 'object', additionalProperties: false, required: ['type', ...required], properties: { type: { const: type }, ...properties } };
}

export const MESSAGE_SCHEMAS: Record<MessageType, object> = {
  hello: schema('hello', { site: id, versions: { type: 'array', minItems: 1, maxItems: 16, items: { type: 'integer', minimum: 1 } } }, ['site', 'versions']),
  challenge: schema('challenge', { version: { type: 'integer', minimum: 1 }, nonce: b64, signature: b64, certificate: signedDocument, revocations: signedDocument }, ['version', 'nonce', 'signature', 'certificate']),
  revocations: schema('revocations', { list: signedDocument }, ['list']),
  auth: schema('auth', { signature: b64 }, ['signature']),
  welcome: schema('welcome', { site: id, heartbeatMs: { type: 'integer', minimum: 100 } }, ['site', 'heartbeatMs']),
  heartbeat: schema('heartbeat', { t: finite }, ['t']),
  fit_ins: schema(
    'fit_ins',
    {
      ...experimentRound,
      modelVersion: { type: 'string', pattern: '^[0-9a-f]{64}$' },
      spec: { type: 'object' },
      config: {
        type: 'object',
        additionalProperties: false,
        required: ['epochs', 'batchSize', 'learningRate', 'optimizer', 'proxMu', 'seed'],
        properties: { ...FIT_CONFIG_PROPERTIES, seed: { type: 'integer' } },
      },
      privacy: ROUND_PRIVACY_SCHEMA,
      security: SECAGG_ROUND_SCHEMA,
      ckks: CKKS_ROUND_SCHEMA,
    },
    ['experiment', 'round', 'modelVersion', 'spec', 'config'],
  ),
  fit_res: schema('fit_res', { ...experimentRound, numExamples: { type: 'integer', minimum: 1 }, metrics, clipIndicator: finite, signature }, ['experiment', 'round', 'numExamples', 'metrics']),
  fit_failed: schema('fit_failed', { ...experimentRound, reason: { type: 'string', maxLength: 2000 }, refused: { enum: [...REFUSAL_KINDS] } }, ['experiment', 'round', 'reason']),
  eval_failed: schema('eval_failed', { ...experimentRound, reason: { type: 'string', maxLength: 2000 }, refused: { enum: [...REFUSAL_KINDS] } }, ['experiment', 'round', 'reason']),
  eval_ins: schema('eval_ins', { ...experimentRound, modelVersion: { type: 'string', pattern: '^[0-9a-f]{64}$' }, spec: { type: 'object' }, ckksKeySet: CKKS_ROUND_SCHEMA.properties.keySet }, ['experiment', 'round', 'modelVersion', 'spec']),
  eval_res: schema('eval_res', { ...experimentRound, numExamples: { type: 'integer', minimum: 1 }, metrics }, ['experiment', 'round', 'numExamples', 'metrics']),
  round_cancel: schema('round_cancel', { ...experimentRound, reason: { type: 'string', maxLength: 2000 } }, ['experiment', 'round', 'reason']),
  secagg_keys: schema('secagg_keys', { ...session, ...keysProperties, signature }, [...sessionRequired, 'cPk', 'sPk', 'seedCommitment', 'signature']),
  secagg_roster: schema(
    'secagg_roster',
    {
      ...session,
      threshold: { type: 'integer', minimum: 1, maximum: 255 },
      neighbours: { type: 'integer', minimum: 0, maximum: 254 },
      participants: { type: 'array', maxItems: 100_000, uniqueItems: true, items: id },
      members: {
        type: 'array',
        minItems: 1,
        maxItems: 255,
        items: { type: 'object', additionalProperties: false, required: ['site', 'certificate', 'cPk', 'sPk', 'seedCommitment', 'signature'], properties: { site: id, certificate: signedDocument, ...keysProperties, signature } },
      },
    },
    [...sessionRequired, 'threshold', 'neighbours', 'participants', 'members'],
  ),
  secagg_shares: schema('secagg_shares', { ...session, boxes: { type: 'array', maxItems: 254, items: { type: 'object', additionalProperties: false, required: ['to', 'box'], properties: { to: id, box } } }, signature }, [...sessionRequired, 'boxes', 'signature']),
  secagg_relay: schema('secagg_relay', { ...session, boxes: { type: 'array', maxItems: 254, items: { type: 'object', additionalProperties: false, required: ['from', 'box'], properties: { from: id, box } } } }, [...sessionRequired, 'boxes']),
  secagg_consistency: schema('secagg_consistency', { ...session, survivors: { type: 'array', maxItems: 100_000, uniqueItems: true, items: id } }, [...sessionRequired, 'survivors']),
  secagg_consistency_sig: schema('secagg_consistency_sig', { ...session, signature }, [...sessionRequired, 'signature']),
  secagg_unmask: schema('secagg_unmask', { ...session, survivors: siteList, dropped: siteList, signatures }, [...sessionRequired, 'survivors', 'dropped', 'signatures']),
  secagg_refused: schema('secagg_refused', { ...session, reason: { type: 'string', maxLength: 2000 } }, [...sessionRequired, 'reason']),
  secagg_unmask_res: schema('secagg_unmask_res', { ...session, seedShares: shareList, keyShares: shareList, signature }, [...sessionRequired, 'seedShares', 'keyShares', 'signature']),
  ckks_key_req: schema('ckks_key_req', { keySet: CKKS_ROUND_SCHEMA.properties.keySet }, ['keySet']),
  ckks_key: schema('ckks_key', { keySet: CKKS_ROUND_SCHEMA.properties.keySet, parameters: CKKS_PARAMETERS_SCHEMA, certificate: signedDocument, grant: signedDocument }, ['keySet', 'parameters', 'certificate', 'grant']),
  ckks_fetch: schema('ckks_fetch', { experiment: id, have: { anyOf: [hex64, { type: 'null' }] }, want: hex64 }, ['experiment', 'have', 'want']),
  ckks_chain: schema(
    'ckks_chain',
    {
      experiment: id,
      want: hex64,
      base: { anyOf: [hex64, { type: 'null' }] },
      initialBytes: { type: 'integer', minimum: 0 },
      links: { type: 'array', maxItems: 10000, items: { type: 'object', additionalProperties: false, required: ['version', 'parent', 'bytes'], properties: { version: hex64, parent: hex64, bytes: { type: 'integer', minimum: 1 } } } },
    },
    ['experiment', 'want', 'base', 'initialBytes', 'links'],
  ),
  ckks_refused: schema('ckks_refused', { request: { enum: ['key', 'chain'] }, id: { type: 'string', maxLength: 128 }, reason: { type: 'string', maxLength: 2000 } }, ['request', 'id', 'reason']),
  model_offer: schema('model_offer', { manifest: MANIFEST_SCHEMA, signature, certificate: signedDocument, spec: { type: 'object' } }, ['manifest', 'signature', 'certificate', 'spec']),
  model_fetch: schema('model_fetch', { version: hex64, base: { anyOf: [hex64, { type: 'null' }] }, offset: { type: 'integer', minimum: 0 } }, ['version', 'base', 'offset']),
  model_chunk: schema('model_chunk', { version: hex64, base: { anyOf: [hex64, { type: 'null' }] }, offset: { type: 'integer', minimum: 0 }, totalBytes: { type: 'integer', minimum: 1, maximum: 2 ** 31 }, sha256: hex64, signature }, ['version', 'base', 'offset', 'totalBytes', 'sha256', 'signature']),
  audit_head: schema('audit_head', { seq: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER }, hash: hex64, at: isoTime, signature }, ['seq', 'hash', 'at', 'signature']),
  data_status: schema(
    'data_status',
    {
      examples: { anyOf: [{ type: 'null' }, { type: 'object', additionalProperties: false, required: ['train', 'validation', 'test'], properties: { train: count, validation: count, test: count } }] },
      release: { enum: ['exact', 'bucketed', 'withheld'] },
      ready: { type: 'boolean' },
      minExamples: { type: 'integer', minimum: 1, maximum: 1_000_000_000 },
    },
    ['examples', 'release', 'ready', 'minExamples'],
  ),
  model_status: schema('model_status', { version: hex64, status: { enum: ['downloading', 'active', 'held', 'refused', 'rolled_back'] }, reason: { type: 'string', maxLength: 2000 } }, ['version', 'status']),
};

const ajv = new Ajv({ allErrors: false, strict: true });
const validators = Object.fromEntries(Object.entries(MESSAGE_SCHEMAS).map(([t, s]) => [t, ajv.compile(s)])) as Record<MessageType, ValidateFunction>;

/** Validates a decoded frame header; throws ProtocolError naming what is wrong. */
export function parseMessage(header: unknown): Message {
  if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, 'message header must be a JSON object');
  const type = (header as { type?: unknown }).type;
  if (typeof type !== 'string' || !Object.hasOwn(validators, type)) throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `unknown message type ${JSON.stringify(type)?.slice(0, 40)}`);
  const validate = validators[type as MessageType];
  if (!validate(header)) {
    const e = validate.errors?.[0];
    throw new ProtocolError(CloseCode.PROTOCOL_ERROR, `invalid ${type} message: ${e?.instancePath || '(root)'} ${e?.message ?? 'is invalid'}`);
  }
  return header as Message;
}
