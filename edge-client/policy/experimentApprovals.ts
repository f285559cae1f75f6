/**
 * Experiment approval (site policy `experiments.approval: "required"`): the site trains only
 * for an experiment whose settings its operator approved, by the hash of those settings — the
 * model, the local training configuration, the privacy settings and the protection. If the
 * coordinator later changes any of them, the hash changes and the experiment is pending again.
 * (Fed-BioMed's training-plan approval is the reference; here the unit is the experiment as the
 * site sees it in `fit_ins`, so nothing the coordinator says elsewhere can widen it.)
 *
 * Two files, so that the running edge and the operator's command never overwrite each other:
 *   STATE_DIR/experiments-pending.json    written by the edge: what asked, with its settings
 *   STATE_DIR/experiment-decisions.json   written by `fedmed edge approve|reject`
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { FedmedError, UsageError } from '../../shared/errors.js';
import { specHash } from '../../shared/model/modelHash.js';
import { parseModelSpec } from '../../shared/model/modelSpec.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { roundSecurity } from '../federation/experimentSecurity.js';

/** What an operator approves: the experiment's settings as its fit_ins states them. */
export interface ExperimentSettings {
  experiment: string;
  model: { specHash: string; layers: number };
  training: { epochs: number; steps: number | null; batchSize: number; learningRate: number; optimizer: string; proxMu: number };
  privacy: { mode: string; noiseMultiplier: number; delta: number; clip: number | 'adaptive' } | null;
  /** The protection and all its parameters except the per-round session (and the noise level the site computes itself). */
  security: { protection: 'plain' | 'secagg' | 'ckks'; bits?: number; range?: number; maxWeight?: number; keySet?: string };
}

export interface PendingExperiment {
  hash: string;
  settings: ExperimentSettings;
  firstSeen: string;
  lastSeen: string;
  rounds: number;
}

export interface Decision {
  hash: string;
  decision: 'approved' | 'rejected';
  at: string;
  reason?: string;
}

export function experimentSettings(m: MessageOf<'fit_ins'>): ExperimentSettings {
  const spec = parseModelSpec(m.spec, 'coordinator model spec');
  const c = m.config;
  const p = m.privacy;
  const protection = roundSecurity(m);
  return {
    experiment: m.experiment,
    model: { specHash: specHash(spec), layers: spec.layers.length },
    training: { epochs: c.epochs, steps: c.steps ?? null, batchSize: c.batchSize, learningRate: c.learningRate, optimizer: c.optimizer, proxMu: c.proxMu },
    // The clip of an adaptive-clipping experiment moves every round: approve the mechanism, not the value.
    privacy: p ? { mode: p.mode, noiseMultiplier: p.noiseMultiplier, delta: p.delta, clip: p.countNoiseStddev !== undefined ? 'adaptive' : p.clip } : null,
    security: {
      protection,
      ...(m.security ? { bits: m.security.bits, range: m.security.range, maxWeight: m.security.maxWeight } : {}),
      ...(m.ckks ? { keySet: m.ckks.keySet, range: m.ckks.range, maxWeight: m.ckks.maxWeight } : {}),
    },
  };
}

export function settingsHash(s: ExperimentSettings): string {
  return createHash('sha256').update(JSON.stringify(s)).digest('hex');
}

export class ExperimentApprovals {
  private readonly pendingFile: string;
  private readonly decisionsFile: string;

  constructor(stateDir: string) {
    this.pendingFile = join(stateDir, 'experiments-pending.json');
    this.decisionsFile = join(stateDir, 'experiment-decisions.json');
  }

  /** The operator's decision on exactly these settings: approved, rejected, or pending (recorded for `fedmed edge experiments`). */
  check(m: MessageOf<'fit_ins'>): { status: 'approved' } | { status: 'rejected'; reason: string } | { status: 'pending'; hash: string } {
    const settings = experimentSettings(m);
    const hash = settingsHash(settings);
    const decisions = this.decisions();
    const d = Object.hasOwn(decisions, m.experiment) ? decisions[m.experiment] : undefined;
    if (d?.hash === hash && d.decision === 'approved') return { status: 'approved' };
    if (d?.hash === hash && d.decision === 'rejected') return { status: 'rejected', reason: d.reason ?? 'rejected by the site operator' };
    const pending = this.pending();
    const now = new Date().toISOString();
    const prev = Object.hasOwn(pending, m.experiment) ? pending[m.experiment] : undefined;
    pending[m.experiment] = prev?.hash === hash ? { ...prev, lastSeen: now, rounds: prev.rounds + 1 } : { hash, settings, firstSeen: now, lastSeen: now, rounds: 1 };
    writeFileAtomic(this.pendingFile, Buffer.from(`${JSON.stringify(pending, null, 2)}\n`), 0o600);
    return { status: 'pending', hash };
  }

  /** Experiments that asked and await a decision on their current settings. */
  listPending(): PendingExperiment[] {
    const decisions = this.decisions();
    return Object.values(this.pending()).filter((p) => !Object.hasOwn(decisions, p.settings.experiment) || decisions[p.settings.experiment].hash !== p.hash);
  }

  decisionsList(): (Decision & { experiment: string })[] {
    return Object.entries(this.decisions()).map(([experiment, d]) => ({ experiment, ...d }));
  }

  /**
   * Records the operator's decision on the experiment's pending settings, named by `hash` (the
   * full hash of the settings they reviewed): the coordinator may have asked again with other
   * settings since, and those were not reviewed.
   */
  decide(experiment: string, decision: Decision['decision'], hash: string, reason?: string): Decision {
    // The whole hash: the coordinator chooses both the settings shown and any it swaps in, so a prefix could be matched by brute force.
    if (!/^[0-9a-f]{64}$/.test(hash)) throw new UsageError(`--settings must be the full 64-digit settings hash "fedmed edge experiments" shows, got "${hash}"`);
    const pending = this.pending();
    const p = Object.hasOwn(pending, experiment) ? pending[experiment] : undefined;
    if (!p) throw new UsageError(`no experiment "${experiment}" has asked this site to train (see "fedmed edge experiments")`);
    if (p.hash !== hash) throw new UsageError(`experiment ${experiment} now asks with settings ${p.hash.slice(0, 12)}…, not ${hash}: review them again ("fedmed edge experiments")`);
    const decisions = this.decisions();
    const d: Decision = { hash: p.hash, decision, at: new Date().toISOString(), ...(reason ? { reason } : {}) };
    decisions[experiment] = d;
    writeFileAtomic(this.decisionsFile, Buffer.from(`${JSON.stringify(decisions, null, 2)}\n`), 0o600);
    return d;
  }

  private pending(): Record<string, PendingExperiment> {
    return readJson(this.pendingFile);
  }

  private decisions(): Record<string, Decision> {
    return readJson(this.decisionsFile);
  }
}

/** A file's record by experiment id, as a null-prototype object (an id such as "constructor" is just an id). */
function readJson<T>(file: string): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  if (!existsSync(file)) return out;
  try {
    return Object.assign(out, JSON.parse(readFileSync(file, 'utf8')) as Record<string, T>);
  } catch (err) {
    throw new FedmedError('SITE_STATE_INVALID', `${file}: not valid JSON (${(err as Error).message}); restore it or remove it to start over`);
  }
}
