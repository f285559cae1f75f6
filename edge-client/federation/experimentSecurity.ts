/**
 * Which protection this site demands of the rounds it trains for, enforced on what arrives in
 * `fit_ins` — the coordinator's word about an experiment's security is never enough:
 *   - the site's required protection (`any`, `secagg`, `ckks`, `secure` = either);
 *   - per experiment, the protection it first trained under (STATE_DIR/experiments.json): a
 *     later fit_ins of the same experiment that arrives without it — e.g. a `secagg` experiment
 *     suddenly asking for a plaintext update — is refused.
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
    return null;
  }

  /** Remembers the protection of an experiment the first time this site trains for it. */
  record(m: MessageOf<'fit_ins'>): void {
    if (this.pinned[m.experiment]) return;
    this.pinned[m.experiment] = { security: roundSecurity(m), since: { round: m.round, at: new Date().toISOString() } };
    writeFileAtomic(this.file, Buffer.from(`${JSON.stringify(this.pinned, null, 2)}\n`), 0o600);
  }
}
