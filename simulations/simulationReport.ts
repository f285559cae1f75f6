/**
 * The shape of `report.json`: everything a simulation measured, per run and round, with the
 * baselines and the environment. report.html is drawn from exactly this.
 */
import type { LocalBaseline, ModelScores } from './baselines.js';
import type { SimulationConfig } from './simulationConfig.js';

export interface RoundReport {
  round: number;
  status: string;
  reason: string | null;
  versionId: string | null;
  /** Example-weighted federated evaluation (each site on its own test split). */
  global: { loss: number; accuracy: number; auc: number | null } | null;
  /** Unweighted mean over the sites that evaluated (FLamby's average). */
  meanSiteAccuracy: number | null;
  sites: { site: string; fit?: string; evaluate?: string; reason?: string; seconds?: number; accuracy?: number; auc?: number; loss?: number }[];
  /** Sites that dropped or failed in this round, with why. */
  dropouts: { site: string; phase: string; status: string; reason: string }[];
  epsilon: number | null;
  bytesSent: number;
  bytesReceived: number;
  timings: Record<string, number>;
}

export interface RunReport {
  label: string;
  strategy: string;
  options: Record<string, unknown>;
  experiment: string;
  rounds: RoundReport[];
  /** The final global model scored on every site's test split by the simulator. */
  final: ModelScores | null;
  coordinatorRestarts: number;
  wallSeconds: number;
}

export interface SimulationReport {
  name: string;
  seed: number;
  createdAt: string;
  config: SimulationConfig;
  data: string;
  model: { name: string; parameters: number };
  sites: { name: string; train: number; test: number; trainLabels: number[] }[];
  runs: RunReport[];
  baselines: { pooled?: ModelScores; local?: LocalBaseline };
  environment: { node: string; platform: string; cpus: number; transport: string; workers: number };
  wallSeconds: number;
  /** Where the wall time went: setupSeconds (data, coordinator, enrolment, connections), teardownSeconds, baselinesSeconds. */
  phases: Record<string, number>;
  peakRssMb: number;
}
