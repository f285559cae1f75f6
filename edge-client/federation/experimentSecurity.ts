/**
 * What this site holds each experiment to, enforced on what arrives in `fit_ins` — the
 * coordinator's word is never enough:
 *   - the site's required protection (`any`, `secagg`, `ckks`, `secure` = either);
 *   - per experiment (STATE_DIR/experiments.json), the protection it first trained under: a
 *     later fit_ins of the same experiment that arrives without it — e.g. a `secagg` experiment
 *     suddenly asking for a plaintext update — is refused;
 *   - per experiment, its privacy from its first round: DP is never dropped, the mode never
 *     changes, the noise multiplier never goes below the first round's;
 *   - one release per round: the site trains at most once per (experiment, round), and rounds
 *     only move forward (a repeated round would release a fresh noisy update of the same data,
 *     composing privacy loss the ledger would not see).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import type { MessageOf } from '../../shared/protocol/messages.js';

export type RoundSecurity = 'plain' | 'secagg' | 'ckks';
export type RequiredSecurity = 'any' | 'secagg' | 'ckks' | 'secure';
export const REQUIRED_SECURITY: readonly RequiredSecurity[] = ['any', 'secagg', 'ckks', 'secure'];

export function roundSecurity(m: MessageOf<'fit_ins'>): RoundSecurity {
  return m.ckks ? 'ckks' : m.security ? 'secagg' : 'plain';
}

interface Pinned {
  security: RoundSecurity;
  since: { round: number; at: string };
  /** The latest round this site trained for. */
  lastRound?: number;
  /** The experiment's DP mode from its first round (null: not DP); it never changes, and DP is never dropped. */
  privacyMode?: string | null;
  /** Whether the experiment's rounds are differentially private (its evaluations are then released under the same rules). */
  dp?: boolean;
  /** Its latest noise multiplier (the evaluation of a DP round is noised with it; later rounds may not go below the first). */
  noiseMultiplier?: number;
  /** The first round's noise multiplier: later rounds may not ask for less. */
  firstNoiseMultiplier?: number;
  /** The latest round whose evaluation the ledger paid for with the round's fit, at that round's z. */
  evaluationPaid?: { round: number; noiseMultiplier: number };
  /** The latest round whose evaluation this site released. */
  lastEvaluation?: number;
}

export class ExperimentSecurity {
  private readonly file: string;
  /** By experiment id (a null-prototype object: an id such as "constructor" is just an id). */
  private pinned: Record<string, Pinned>;

  constructor(stateDir: string) {
    this.file = join(stateDir, 'experiments.json');
    this.pinned = Object.assign(Object.create(null) as Record<string, Pinned>, existsSync(this.file) ? (JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, Pinned>) : {});
  }

  /** Why this site will not train for this fit_ins, or null. */
  refusal(m: MessageOf<'fit_ins'>, required: RequiredSecurity): string | null {
    const mode = roundSecurity(m);
    if (m.ckks && m.security) return 'the round asks for both SecAgg+ and CKKS';
    const ok = required === 'any' || mode === required || (required === 'secure' && mode !== 'plain');
    if (!ok) return `this site requires ${required === 'secure' ? 'secure aggregation (SecAgg+ or CKKS)' : required} and the round is ${mode === 'plain' ? 'not securely aggregated' : mode}`;
    const p = this.pinned[m.experiment];
    if (p && p.security !== mode) return `experiment ${m.experiment} ran under ${p.security} since round ${p.since.round}; this round asks for ${mode}: refused (the protection of an experiment never changes)`;
    if (p && p.privacyMode !== undefined) {
      // Its privacy is pinned too: a DP experiment that drops DP, changes mode or lowers z would release what earlier rounds protected.
      const asked = m.privacy?.mode ?? null;
      if (asked !== p.privacyMode) return `experiment ${m.experiment} ran ${p.privacyMode ? `under DP mode "${p.privacyMode}"` : 'without DP'} since round ${p.since.round}; this round asks for ${asked ? `DP mode "${asked}"` : 'no DP'}: refused (the privacy of an experiment never changes)`;
      if (m.privacy && p.firstNoiseMultiplier !== undefined && m.privacy.noiseMultiplier < p.firstNoiseMultiplier) return `experiment ${m.experiment} ran at noise multiplier ${p.firstNoiseMultiplier} since round ${p.since.round}; this round asks for ${m.privacy.noiseMultiplier}: refused (an experiment's noise never goes down)`;
    }
    const last = p?.lastRound ?? p?.since.round;
    if (last !== undefined && m.round <= last) return `this site already trained for round ${last} of experiment ${m.experiment}; round ${m.round} is refused (one release per round, and rounds only move forward)`;
    return null;
  }

  /** Records a round this site trains for (and the experiment's protection and privacy, the first time), on disk before training starts. */
  record(m: MessageOf<'fit_ins'>): void {
    const p = this.pinned[m.experiment];
    const z = m.privacy ? { noiseMultiplier: m.privacy.noiseMultiplier } : {};
    if (p) {
      p.lastRound = m.round;
      p.dp ||= m.privacy !== undefined;
      p.privacyMode ??= m.privacy?.mode ?? null; // (files from before the privacy pin)
      Object.assign(p, z);
    } else this.pinned[m.experiment] = { security: roundSecurity(m), since: { round: m.round, at: new Date().toISOString() }, lastRound: m.round, privacyMode: m.privacy?.mode ?? null, dp: m.privacy !== undefined, ...z, ...(m.privacy ? { firstNoiseMultiplier: m.privacy.noiseMultiplier } : {}) };
    this.save();
  }

  /** What this site knows of an experiment it trained for (undefined: it never did). */
  known(experiment: string): { security: RoundSecurity; dp: boolean; noiseMultiplier: number; lastRound: number | undefined; evaluationPaid: { round: number; noiseMultiplier: number } | undefined; lastEvaluation: number | undefined } | undefined {
    const p = this.pinned[experiment];
    return p && { security: p.security, dp: p.dp ?? false, noiseMultiplier: p.noiseMultiplier ?? 0, lastRound: p.lastRound, evaluationPaid: p.evaluationPaid, lastEvaluation: p.lastEvaluation };
  }

  /** The ledger charged this round's evaluation with its fit: one evaluation of it may be released. */
  recordEvaluationPaid(experiment: string, round: number, noiseMultiplier: number): void {
    const p = this.pinned[experiment];
    if (!p) return;
    p.evaluationPaid = { round, noiseMultiplier };
    this.save();
  }

  /** Records an evaluation this site releases (one per round, rounds only forward), before anything awaits. */
  recordEvaluation(experiment: string, round: number): void {
    const p = this.pinned[experiment];
    if (!p) return;
    p.lastEvaluation = round;
    this.save();
  }

  private save(): void {
    writeFileAtomic(this.file, Buffer.from(`${JSON.stringify(this.pinned, null, 2)}\n`), 0o600);
  }
}
