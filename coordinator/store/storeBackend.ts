/**
 * Where the coordinator's records live: the embedded default (SQLite in DATA_DIR, no setup:
 * sqliteBackend.ts) or PostgreSQL for large deployments (postgresBackend.ts). Both keep the
 * document as one row and history as indexed rows (storeSchema.ts), and migrate their schema by
 * version number on open. Model blobs are content-addressed files in DATA_DIR either way.
 *
 * Every read here is by key or index — the latest rounds of an experiment, one round, one
 * version — never a scan of all history; `commit` is one transaction, durable when it resolves.
 */
import type { DeploymentAction, HistoryWrites, RoundRecord, StoreDocument, VersionRecord } from './storeSchema.js';

export interface RoundQuery {
  /** At most this many rounds: the latest ones (before `before`, when given). */
  limit?: number;
  /** Only rounds numbered below this. */
  before?: number;
}

export interface StoreBackend {
  /** 'sqlite' or 'postgres', and where (a file path, or the database URL without its password). */
  readonly description: { kind: 'sqlite' | 'postgres'; location: string };
  /** The document, or null in a new store. */
  readDocument(): Promise<StoreDocument | null>;
  /** Writes the document (when given) and the history rows in one transaction; durable once resolved. */
  commit(document: StoreDocument | null, writes: HistoryWrites): Promise<void>;

  round(experiment: string, round: number): Promise<RoundRecord | null>;
  /** An experiment's rounds, oldest first (with `limit`: the latest `limit` of them). */
  rounds(experiment: string, query?: RoundQuery): Promise<RoundRecord[]>;
  /** The round that published `versionId`. */
  roundOfVersion(versionId: string): Promise<RoundRecord | null>;
  /** Rounds left `running` (after a crash). */
  runningRounds(): Promise<RoundRecord[]>;
  /** The highest round number of an experiment (0 without rounds). */
  lastRoundNumber(experiment: string): Promise<number>;
  /** The rounds charged to an experiment's privacy ledger, oldest first (the ledger composes them all). */
  chargedRounds(experiment: string): Promise<RoundRecord[]>;

  version(id: string): Promise<VersionRecord | null>;
  /** Versions whose id starts with `prefix` (at most `limit`). */
  versionsWithPrefix(prefix: string, limit: number): Promise<VersionRecord[]>;
  /** An experiment's versions, oldest first (with `limit`: the latest `limit`). */
  versions(experiment: string, query?: { limit?: number }): Promise<VersionRecord[]>;

  /** The latest deployment actions, oldest first, and how many there are in all. */
  deploymentActions(limit: number): Promise<{ actions: DeploymentAction[]; total: number }>;

  close(): Promise<void>;
}
