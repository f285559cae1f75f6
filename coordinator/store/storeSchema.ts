/**
 * The records the coordinator persists. Two kinds, by how they grow:
 *   the document (StoreDocument): sites, tokens, experiments, the deployment's current state,
 *     the federation's certificates — bounded by the federation's size, read and written whole;
 *   history (RoundRecord, VersionRecord, DeploymentAction): one row per round, version and
 *     deployment action, appended or updated by key and read by index (storeBackend.ts), so a
 *     round's cost does not grow with the rounds before it.
 */
import type { ModelSpec } from '../../shared/model/modelSpec.js';
import type { WeightedMetrics } from '../../shared/aggregation/strategy.js';
import type { ModelStatus, SiteMetrics } from '../../shared/protocol/messages.js';
import type { SignedManifest } from '../../shared/model/versionManifest.js';
import type { ExperimentConfig } from '../experimentConfig.js';
import type { CkksParameters } from '../../shared/secure/ckks/ckksParams.js';
import type { CkksKeyGrant, CkksKeySetCertificate, CoordinatorCertificate, RevocationList, SiteCertificate } from '../../shared/secure/trust/certificates.js';

/** admin: sites, tokens, everything; researcher: experiments and rounds; deployer: clinical deployments (publish, promote, roll back); all can read. */
export type Role = 'admin' | 'researcher' | 'deployer';
export const ROLES: readonly Role[] = ['admin', 'researcher', 'deployer'];

export interface SiteRecord {
  name: string;
  /** SHA-256 of the one-time join token (the token itself is never stored). */
  tokenSha256: string;
  tokenUsedAt: string | null;
  /** Ed25519 public key (base64url), set at enrolment. */
  publicKey: string | null;
  createdAt: string;
  enrolledAt: string | null;
  revokedAt: string | null;
  lastSeen: string | null;
  roundsJoined: number;
  /** X25519 key the site receives secrets with (base64url), registered at enrolment. */
  encryptionKey?: string;
  /** The federation admin's certificate of the site's keys: without one the site is never sampled. */
  certificate?: SiteCertificate;
}

/**
 * The federation this coordinator serves: the admin's public key (the trust anchor; the
 * private key never comes here), the admin-signed certificate of this coordinator's key, and
 * the newest admin-signed revocation list.
 */
export interface FederationRecord {
  adminPublicKey: string;
  coordinatorCertificate: CoordinatorCertificate;
  revocations: RevocationList | null;
}

/**
 * A CKKS key set made by the federation admin: only its public parameters and which sites have
 * a wrapped copy of its secret key (the wrapped keys are files in DATA_DIR/ckks-keys/).
 */
export interface CkksKeySetRecord {
  id: string;
  parameters: CkksParameters;
  createdAt: string;
  /** The admin's signature on the key set's id and parameters (sites accept no key set without it). */
  certificate: CkksKeySetCertificate;
  /** Sites a wrapped secret key was uploaded for, with the encryption key it was wrapped to and the admin's grant. */
  sites: { site: string; encryptionKey: string; at: string; grant: CkksKeyGrant }[];
}

export interface ApiTokenRecord {
  id: string;
  sha256: string;
  role: Role;
  createdAt: string;
  /** A label for the admin's list. */
  name?: string;
  /** After this, the token no longer works. */
  expiresAt?: string;
  /** Revoked by an admin (kept for the record). */
  revokedAt?: string;
}

export interface ExperimentRecord {
  id: string;
  name: string;
  createdAt: string;
  config: ExperimentConfig;
  spec: ModelSpec;
  /** Version id of the current global model. */
  currentVersion: string;
  roundsCompleted: number;
  /** Adaptive clipping: the clip norm for the next round (absent: the configured clip). */
  clip?: number;
  /**
   * The run of rounds a researcher started and that has not ended (persisted, so a coordinator
   * that crashed — or a standby taking over — redoes the round cut short and goes on).
   */
  run?: RunRecord;
}

export interface RunRecord {
  /** Rounds asked for, and the number of the first. */
  rounds: number;
  firstRound: number;
  requestedAt: string;
  /** How many times a restart resumed it (a run that keeps crashing the coordinator is not resumed again). */
  resumes: number;
}

export type RoundStatus = 'running' | 'completed' | 'failed' | 'aborted';

export interface RoundSiteRecord {
  site: string;
  phase: 'fit' | 'evaluate';
  status: 'sent' | 'done' | 'dropped' | 'failed';
  numExamples?: number;
  seconds?: number;
  metrics?: SiteMetrics;
  reason?: string;
  /** The site claimed more examples than the experiment's maxExampleWeight: the weight it got. */
  weightClipped?: { claimed: number; used: number };
}

export interface RoundRecord {
  experiment: string;
  round: number;
  status: RoundStatus;
  startedAt: string;
  endedAt: string | null;
  reason: string | null;
  sites: RoundSiteRecord[];
  /** Example-weighted training metrics reported with the updates. */
  fitMetrics: WeightedMetrics | null;
  /** Example-weighted evaluation of the new model on the sites' local validation data. */
  evalMetrics: WeightedMetrics | null;
  versionId: string | null;
  timings: Record<string, number>;
  /** DP parameters of the round and whether its releases were charged to the ledger. */
  privacy?: {
    mode: string;
    noiseMultiplier: number;
    samplingRate: number;
    clip: number;
    delta: number;
    charged: boolean;
    epsilon?: number;
    unclippedFraction?: number;
    nextClip?: number;
    /**
     * The z of the update noise actually added, when it differs from `noiseMultiplier`
     * (central mode with adaptive clipping: z_Δ). Absent: derived (rounds/privacyLedger.ts).
     */
    updateNoiseMultiplier?: number;
    /** Adaptive clipping: σ_b, the stddev of the noise on the sum of the clip bits. */
    countStddev?: number;
    /** Adaptive clipping: the stddev each site adds to its own bit (fit_ins countNoiseStddev; 0 in central mode). */
    countNoiseStddev?: number;
    /** Distributed DP under SecAgg+: what the distributed discrete Gaussian bound needs. */
    ddg?: {
      /** Values per update (the model's parameter count). */
      dimension: number;
      bits: number;
      range: number;
      /** Reconstruction threshold t of the round's share groups. */
      threshold: number;
      /** Largest weight a site may apply (1 under DP's equal weights). */
      maxWeight: number;
      /** Conditional randomised rounding β the sites use (0: unconditional rounding). */
      beta: number;
    };
  };
  /** This round redoes round N, which a coordinator restart cut short. */
  redoes?: number;
  /** Secure aggregation of the round (absent = plain): threshold, contributors, phase timings. */
  security?: { mode: string } & Record<string, unknown>;
  bytesSent: number;
  bytesReceived: number;
}

export interface VersionRecord {
  id: string;
  experiment: string;
  round: number;
  parent: string | null;
  specHash: string;
  /** SHA-256 of the parameters; null for a CKKS version (the coordinator cannot compute it). */
  paramsSha256: string | null;
  /** CKKS: the version is an encrypted aggregate applied to `parent` (DATA_DIR/ckks-versions/). */
  encrypted?: { sha256: string; bytes: number };
  createdAt: string;
  /** The coordinator-signed manifest of its latest release (made when the version is deployed). */
  signed?: SignedManifest;
}

/**
 * Which version each site's inference service should run: `current` for every site, except
 * the sites of a canary, which run the canary's version until it is promoted or rolled back.
 */
export interface DeploymentAction {
  at: string;
  action: 'publish' | 'canary' | 'promote' | 'rollback' | 'held';
  version: string | null;
  sites?: string[];
  reason?: string;
}

export interface DeploymentRecord {
  current: string | null;
  /**
   * Release sequence: every deployment action takes the next number, and the manifest a site is
   * offered carries the release at which its target was set. Edges refuse a release older than
   * the one they run (anti-downgrade), so a rollback is a new release of an old version.
   */
  release?: number;
  /** The release at which `current` became the target. */
  currentRelease?: number;
  canary: { version: string; sites: string[]; release?: number } | null;
  /** Earlier `current` versions, most recent last (for rollback). */
  previous: string[];
  /** The last version the deployment gate held back (cleared when a later version is deployed). */
  held?: GateDecision | null;
  /** The gate's last decision (deploy "gated"). */
  lastGate?: GateDecision;
}

/** What the deployment gate decided about a version a round published, and why. */
export interface GateDecision {
  version: string;
  experiment: string;
  round: number;
  decision: 'deployed' | 'held';
  reason: string;
  /** The version's example-weighted federated accuracy, and over how many sites (null: none). */
  accuracy: number | null;
  sites: number;
  /** What it was compared with: the deployed version's accuracy (or chance, with nothing deployed). */
  baseline: { version: string | null; accuracy: number } | null;
  at: string;
}

/** What a site last reported about the models it was offered. */
export interface SiteModelRecord {
  site: string;
  /** The version its inference service runs. */
  active: string | null;
  /** The last version it reported on, its status and the reason of a refusal. */
  version: string;
  status: ModelStatus;
  reason?: string;
  at: string;
  /** The last refusal or rollback the site reported (kept when later reports arrive). */
  lastRefusal?: { version: string; status: ModelStatus; reason?: string; at: string };
}

/** The document: everything but history (see the header). */
export interface StoreDocument {
  format: 'fedmed.coordinator-store/2';
  sites: SiteRecord[];
  apiTokens: ApiTokenRecord[];
  experiments: ExperimentRecord[];
  deployment?: DeploymentRecord;
  siteModels?: SiteModelRecord[];
  /** The versions offered to each site (model_offer), the latest last: the only bases its fetches may name. */
  siteOffers?: { site: string; versions: string[] }[];
  ckksKeySets?: CkksKeySetRecord[];
  federation?: FederationRecord;
}

export function emptyDocument(): StoreDocument {
  return { format: 'fedmed.coordinator-store/2', sites: [], apiTokens: [], experiments: [] };
}

/** History written with a document (in one transaction): rounds and versions upserted by key, actions appended. */
export interface HistoryWrites {
  rounds?: RoundRecord[];
  versions?: VersionRecord[];
  deploymentActions?: DeploymentAction[];
}
