/** What the coordinator's REST API and event stream send (the fields the dashboard uses). */

export type Role = 'admin' | 'researcher' | 'deployer';

export interface WhoAmI {
  role: Role;
  id: string;
  name?: string;
}

export interface SiteRefusal {
  experiment: string;
  round: number;
  kind: string;
  reason: string;
  at: string;
  supersededInRound?: number;
}

export interface Site {
  name: string;
  enrolled: boolean;
  revoked: boolean;
  online: boolean;
  lastSeen: string | null;
  roundsJoined: number;
  createdAt: string;
  fingerprint: string | null;
  certified: boolean;
  uncertifiedReason: string | null;
  refusals: SiteRefusal[];
  pendingApproval: string[];
  /** The site's readiness as its policy releases it (null: not told yet). */
  data: SiteData | null;
}

export interface SiteData {
  examples: { train: number; validation: number; test: number } | null;
  release: 'exact' | 'bucketed' | 'withheld';
  ready: boolean;
  minExamples: number;
  reportedAt: string;
}

export interface Experiment {
  id: string;
  name: string;
  createdAt: string;
  currentVersion: string;
  roundsCompleted: number;
  running: boolean;
  parameters: number;
  config: { security?: string; strategy?: unknown; deploy?: string; privacy?: unknown; minFitClients?: number; [k: string]: unknown };
}

export interface WeightedMetrics {
  loss: number;
  accuracy: number;
  auc: number | null;
  numExamples: number;
  sites: number;
}

export interface RoundSite {
  site: string;
  phase: 'fit' | 'evaluate';
  status: 'sent' | 'done' | 'dropped' | 'failed';
  numExamples?: number;
  seconds?: number;
  reason?: string;
  refused?: string;
}

export interface RoundRecord {
  experiment: string;
  round: number;
  status: 'running' | 'completed' | 'failed' | 'aborted';
  startedAt: string;
  endedAt: string | null;
  reason: string | null;
  sites: RoundSite[];
  evalMetrics: WeightedMetrics | null;
  versionId: string | null;
  timings: Record<string, number>;
  security?: { mode: string } & Record<string, unknown>;
  bytesSent: number;
  bytesReceived: number;
}

export interface MetricsRow {
  round: number;
  status: string;
  fit: WeightedMetrics | null;
  evaluate: WeightedMetrics | null;
  sites: { site: string; numExamples?: number; loss?: number; accuracy?: number; auc?: number }[];
}

export interface Privacy {
  enabled: boolean;
  mode: string | null;
  delta: number | null;
  noiseMultiplier: number | null;
  clip: number | null;
  epsilon: number | null;
  problem?: string;
  rounds: { round: number; samplingRate: number; epsilon: number | null }[];
  /** Per-site ledger totals, when a coordinator reports them. */
  sites?: { site: string; epsilon: number | null; rounds?: number }[];
}

export interface Version {
  id: string;
  experiment: string;
  round: number;
  parent: string | null;
  createdAt: string;
  encrypted?: unknown;
}

export interface GateDecision {
  version: string;
  experiment: string;
  round: number;
  decision: 'deployed' | 'held';
  reason: string;
  accuracy: number | null;
  sites: number;
  baseline: { version: string | null; accuracy: number } | null;
  at: string;
}

export interface DeploymentView {
  current: string | null;
  release?: number;
  currentRelease?: number;
  canary: { version: string; sites: string[]; release?: number } | null;
  previous: string[];
  log: { at: string; action: string; version: string | null; sites?: string[]; reason?: string }[];
  held?: GateDecision | null;
  lastGate?: GateDecision;
  sites: {
    site: string;
    target: string | null;
    active: string | null;
    lastReport: { version: string; status: string; reason?: string; at: string } | null;
    lastRefusal: { version: string; status: string; reason?: string; at: string } | null;
  }[];
  otaBytesSent: Record<string, number>;
}

export type Phase = 'training' | 'key_exchange' | 'masked_input' | 'unmask' | 'evaluation';
export const PHASES: readonly Phase[] = ['training', 'key_exchange', 'masked_input', 'unmask', 'evaluation'];
export type PhaseStatus = 'started' | 'done' | 'failed' | 'dropped';

/** The coordinator's event stream (GET /v1/events; coordinator/events/federationEvents.ts). */
export type DashEvent =
  | { type: 'hello'; role: Role; at?: number }
  | { type: 'site'; site: string; online: boolean; change?: string; at: number }
  | { type: 'round'; experiment: string; round: number; status: 'started' | 'completed' | 'failed' | 'stopped'; reason?: string; at: number }
  | { type: 'phase'; experiment: string; round: number; site: string; phase: Phase; status: PhaseStatus; reason?: string; refused?: string; seconds?: number; bytes?: number; at: number }
  | { type: 'version'; experiment: string; version: string; round?: number; at: number }
  | { type: 'metrics'; experiment: string; round: number; at: number }
  | { type: 'privacy'; experiment: string; epsilon?: number | null; at: number }
  | { type: 'deployment'; change?: string; version?: string | null; site?: string; at: number }
  | { type: 'token'; id: string; change: string; at: number }
  | { type: 'experiment'; experiment: string; change: string; at: number }
  | { type: 'audit'; at: number };
