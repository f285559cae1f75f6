/**
 * The site's own privacy ledger. Before training in a round, the edge computes what releasing
 * its update would cost — by its own arithmetic, not the coordinator's — and refuses when the
 * total (all experiments) or the per-experiment ε at its δ would exceed what its operator
 * allowed. Accounting is conservative: a round the site takes part in is charged as the plain
 * Gaussian mechanism (q = 1; the site knows it was sampled, so no amplification is assumed).
 *
 * The ledger file carries an HMAC-SHA256 under a key kept beside it (mode 0600); a file that
 * was edited is refused, and the edge will not train until an operator resolves it.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { FedmedError } from '../../shared/errors.js';
import type { RoundPrivacy } from '../../shared/privacy/privacyConfig.js';
import { RdpAccountant } from '../../shared/privacy/rdpAccountant.js';

export class LedgerError extends FedmedError {
  constructor(message: string) {
    super('PRIVACY_LEDGER', message);
  }
}

export interface PrivacyBudget {
  /** Largest total ε (all experiments) this site allows, at `delta`. */
  epsilon: number;
  delta: number;
  /** Optional per-experiment limit. */
  perExperiment?: number;
}

interface LedgerEntry {
  experiment: string;
  round: number;
  noiseMultiplier: number;
  mode: string;
  chargedAt: string;
}

interface LedgerFile {
  format: 'fedmed.privacy-ledger/1';
  entries: LedgerEntry[];
  mac: string;
}

export class PrivacyLedger {
  private entries: LedgerEntry[] = [];
  private readonly key: Buffer;

  constructor(
    private readonly dir: string,
    readonly budget: PrivacyBudget,
  ) {
    const keyFile = join(dir, 'privacy-ledger.key');
    if (!existsSync(keyFile)) writeFileAtomic(keyFile, randomBytes(32), 0o600);
    this.key = readFileSync(keyFile);
    const file = join(dir, 'privacy-ledger.json');
    if (existsSync(file)) {
      let parsed: LedgerFile;
      try {
        parsed = JSON.parse(readFileSync(file, 'utf8')) as LedgerFile;
      } catch {
        throw new LedgerError(`${file}: not valid JSON; refusing to train until the ledger is restored`);
      }
      if (parsed.format !== 'fedmed.privacy-ledger/1' || !Array.isArray(parsed.entries) || parsed.mac !== this.mac(parsed.entries)) {
        throw new LedgerError(`${file}: checksum mismatch (the ledger was modified); refusing to train until it is restored`);
      }
      this.entries = parsed.entries;
    }
  }

  /** ε spent so far (total, or for one experiment) at the budget's δ. */
  spent(experiment?: string): number {
    return this.epsilonOf(this.entries.filter((e) => !experiment || e.experiment === experiment));
  }

  /**
   * Checks whether taking part in this round stays within the budget; returns the reason to
   * refuse, or null.
   */
  refusal(experiment: string, round: number, p: RoundPrivacy): string | null {
    if (this.entries.some((e) => e.experiment === experiment && e.round === round)) return null; // already charged (retry)
    const next: LedgerEntry = { experiment, round, noiseMultiplier: p.noiseMultiplier, mode: p.mode, chargedAt: '' };
    const total = this.epsilonOf([...this.entries, next]);
    if (total > this.budget.epsilon) return `privacy budget exhausted: this round would bring the site's total to ε = ${total.toFixed(3)} (limit ${this.budget.epsilon} at δ = ${this.budget.delta}); already spent ${this.spent().toFixed(3)}`;
    if (this.budget.perExperiment !== undefined) {
      const exp = this.epsilonOf([...this.entries.filter((e) => e.experiment === experiment), next]);
      if (exp > this.budget.perExperiment) return `privacy budget exhausted for experiment ${experiment}: ε would reach ${exp.toFixed(3)} (limit ${this.budget.perExperiment} at δ = ${this.budget.delta})`;
    }
    return null;
  }

  /** Records the release (call right before the update leaves the site). */
  charge(experiment: string, round: number, p: RoundPrivacy): void {
    if (this.entries.some((e) => e.experiment === experiment && e.round === round)) return;
    this.entries.push({ experiment, round, noiseMultiplier: p.noiseMultiplier, mode: p.mode, chargedAt: new Date().toISOString() });
    const file: LedgerFile = { format: 'fedmed.privacy-ledger/1', entries: this.entries, mac: this.mac(this.entries) };
    writeFileAtomic(join(this.dir, 'privacy-ledger.json'), Buffer.from(`${JSON.stringify(file, null, 2)}\n`));
  }

  private epsilonOf(entries: LedgerEntry[]): number {
    if (entries.length === 0) return 0;
    const acc = new RdpAccountant();
    for (const e of entries) acc.compose(1, e.noiseMultiplier, 1);
    return acc.epsilon(this.budget.delta).epsilon;
  }

  private mac(entries: LedgerEntry[]): string {
    return createHmac('sha256', this.key).update(JSON.stringify(entries)).digest('hex');
  }
}
