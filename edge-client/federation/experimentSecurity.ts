/**
 * What this site holds each experiment to, enforced on what arrives in `fit_ins` — the
 * coordinator's word is never enough:
 *   - the site's required protection (`any`, `secagg`, `ckks`, `secure` = either);
 *   - per experiment (STATE_DIR/experiments.json), the protection it first trained under: a
 *     later fit_ins of the same experiment that arrives without it — e.g. a `secagg` experiment
 *     suddenly asking for a plaintext update — is refused;
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
}

export class ExperimentSecurity {
  private readonly file: string;
  private pinned: Record<string, Pinned>;

  constructor(
    stateDir: string,
    readonly required: RequiredSecurity = 'any',
  ) {
    this.file = join(stateDir, 'experiments.json');
    this.pinned = existsSync(this.file) ? (JSON.parse(readFileSync(this.file, 'utf8')) as Record<string, Pinned>) : {};
  }

  /** Why this site will not train for this fit_ins, or null. */
  refusal(m: MessageOf<'fit_ins'>): string | null {
    const mode = roundSecurity(m);
    if (m.ckks && m.security) return 'the round asks for both SecAgg+ and CKKS';
    const ok = this.required === 'any' || mode === this.required || (this.required === 'secure' && mode !== 'plain');
    if (!ok) return `this site requires ${this.required === 'secure' ? 'secure aggregation (SecAgg+ or CKKS)' : this.required} and the round is ${mode === 'plain' ? 'not securely aggregated' : mode}`;
    const p = this.pinned[m.experiment];
    if (p && p.security !== mode) return `experiment ${m.experiment} ran under ${p.security} since round ${p.since.round}; this round asks for ${mode}: refused (the protection of an experiment never changes)`;
    const last = p?.lastRound ?? p?.since.round;
    if (last !== undefined && m.round <= last) return `this site already trained for round ${last} of experiment ${m.experiment}; round ${m.round} is refused (one release per round, and rounds only move forward)`;
    return null;
  }

  /** Records a round this site trains for (and the experiment's protection, the first time), on disk before training starts. */
  record(m: MessageOf<'fit_ins'>): void {
    const p = this.pinned[m.experiment];
    if (p) p.lastRound = m.round;
    else this.pinned[m.experiment] = { security: roundSecurity(m), since: { round: m.round, at: new Date().toISOString() }, lastRound: m.round };
    writeFileAtomic(this.file, Buffer.from(`${JSON.stringify(this.pinned, null, 2)}\n`), 0o600);
  }
}
