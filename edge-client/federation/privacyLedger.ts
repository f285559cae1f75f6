/**
 * The site's own privacy ledger. Before training in a round, the edge computes what releasing
 * its update would cost — by its own arithmetic, not the coordinator's — and refuses when the
 * total (all experiments) or the per-experiment ε at its δ would exceed what its operator
 * allowed. Each entry records the mechanisms the site actually ran in that round (the update —
 * a Gaussian, or under SecAgg+ the distributed discrete Gaussian — and e.g. the adaptive-clipping
 * bit), composed by RDP (shared/privacy/privacyMechanism.ts). Accounting is conservative: q = 1
 * (the site knows it was sampled, so no amplification is assumed).
 *
 * The charge is durable before the caller goes on (writeFileAtomic fsyncs the file and its
 * directory): call `charge` before anything of the round leaves the site.
 *
 * The ledger file carries an HMAC-SHA256 under a key kept beside it (mode 0600); a file that
 * was edited is refused, and the edge will not train until an operator resolves it.
 * Format `fedmed.privacy-ledger/2`; a `/1` file (one noise multiplier per entry) is read as a
 * Gaussian per entry and rewritten as `/2` at the next charge.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { FedmedError } from '../../shared/errors.js';
import { composeMechanisms, parseMechanism, type PrivacyMechanism } from '../../shared/privacy/privacyMechanism.js';
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

export interface LedgerEntry {
  experiment: string;
  round: number;
  /** What the site released in this round, each charged at q = 1 and composed by RDP. */
  mechanisms: PrivacyMechanism[];
  /** The experiment's privacy mode (entries migrated from format /1 only). */
  mode?: string;
  chargedAt: string;
}

const FORMAT = 'fedmed.privacy-ledger/2';

interface LedgerFile {
  format: typeof FORMAT;
  entries: LedgerEntry[];
  mac: string;
}

interface LedgerFileV1 {
  format: 'fedmed.privacy-ledger/1';
  entries: { experiment: string; round: number; noiseMultiplier: number; mode: string; chargedAt: string }[];
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
    if (existsSync(file)) this.entries = this.read(file);
  }

  /** ε spent so far (total, or for one experiment) at the budget's δ. */
  spent(experiment?: string): number {
    return this.epsilonOf(this.entries.filter((e) => !experiment || e.experiment === experiment));
  }

  /** The charged rounds, oldest first (copies). */
  history(): LedgerEntry[] {
    return this.entries.map((e) => ({ ...e, mechanisms: e.mechanisms.map((m) => ({ ...m })) }));
  }

  /**
   * Checks whether releasing `mechanisms` in this round stays within the budget; returns the
   * reason to refuse, or null.
   */
  refusal(experiment: string, round: number, mechanisms: readonly PrivacyMechanism[]): string | null {
    if (this.charged(experiment, round)) return null; // already charged (retry)
    let next: LedgerEntry;
    try {
      next = { experiment, round, mechanisms: this.checked(mechanisms), chargedAt: '' };
    } catch (err) {
      return `this site cannot account for the round's privacy mechanism: ${(err as Error).message}`;
    }
    const total = this.epsilonOf([...this.entries, next]);
    if (total > this.budget.epsilon) return `privacy budget exhausted: this round would bring the site's total to ε = ${total.toFixed(3)} (limit ${this.budget.epsilon} at δ = ${this.budget.delta}); already spent ${this.spent().toFixed(3)}`;
    if (this.budget.perExperiment !== undefined) {
      const exp = this.epsilonOf([...this.entries.filter((e) => e.experiment === experiment), next]);
      if (exp > this.budget.perExperiment) return `privacy budget exhausted for experiment ${experiment}: ε would reach ${exp.toFixed(3)} (limit ${this.budget.perExperiment} at δ = ${this.budget.delta})`;
    }
    return null;
  }

  /**
   * Records the release of `mechanisms` in this round, durably (file and directory fsynced)
   * before it returns: call it before anything of the round leaves the site. A round already
   * charged is not charged again. Throws LedgerError for a mechanism it cannot account.
   */
  charge(experiment: string, round: number, mechanisms: readonly PrivacyMechanism[]): void {
    if (this.charged(experiment, round)) return;
    let checked: PrivacyMechanism[];
    try {
      checked = this.checked(mechanisms);
    } catch (err) {
      throw new LedgerError(`cannot charge round ${round} of ${experiment}: ${(err as Error).message}`);
    }
    const entries = [...this.entries, { experiment, round, mechanisms: checked, chargedAt: new Date().toISOString() }];
    const file: LedgerFile = { format: FORMAT, entries, mac: this.mac(FORMAT, entries) };
    writeFileAtomic(join(this.dir, 'privacy-ledger.json'), Buffer.from(`${JSON.stringify(file, null, 2)}\n`));
    this.entries = entries; // only once it is on disk
  }

  private charged(experiment: string, round: number): boolean {
    return this.entries.some((e) => e.experiment === experiment && e.round === round);
  }

  private checked(mechanisms: readonly PrivacyMechanism[]): PrivacyMechanism[] {
    if (mechanisms.length === 0) throw new Error('no mechanism given (a release without noise cannot be charged)');
    return mechanisms.map((m, i) => parseMechanism(m, `mechanism ${i}`));
  }

  private read(file: string): LedgerEntry[] {
    let parsed: LedgerFile | LedgerFileV1;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8')) as LedgerFile | LedgerFileV1;
    } catch {
      throw new LedgerError(`${file}: not valid JSON; refusing to train until the ledger is restored`);
    }
    const modified = new LedgerError(`${file}: checksum mismatch (the ledger was modified); refusing to train until it is restored`);
    if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.entries)) throw modified;
    if (parsed.format === 'fedmed.privacy-ledger/1') {
      if (parsed.mac !== this.macV1(parsed.entries)) throw modified;
      return parsed.entries.map((e, i) => ({ experiment: e.experiment, round: e.round, mechanisms: [this.parse({ kind: 'gaussian', noiseMultiplier: e.noiseMultiplier }, file, i)], mode: e.mode, chargedAt: e.chargedAt }));
    }
    if (parsed.format !== FORMAT || parsed.mac !== this.mac(FORMAT, parsed.entries)) throw modified;
    for (const [i, e] of parsed.entries.entries()) {
      if (!Array.isArray(e.mechanisms) || e.mechanisms.length === 0) throw new LedgerError(`${file}: entry ${i} has no mechanisms; refusing to train until the ledger is restored`);
      e.mechanisms = e.mechanisms.map((m) => this.parse(m, file, i));
    }
    return parsed.entries;
  }

  private parse(m: unknown, file: string, i: number): PrivacyMechanism {
    try {
      return parseMechanism(m, `entry ${i}`);
    } catch (err) {
      throw new LedgerError(`${file}: ${(err as Error).message}; refusing to train until the ledger is restored`);
    }
  }

  private epsilonOf(entries: LedgerEntry[]): number {
    if (entries.length === 0) return 0;
    const acc = new RdpAccountant();
    for (const e of entries) composeMechanisms(acc, e.mechanisms);
    return acc.epsilon(this.budget.delta).epsilon;
  }

  /** Format /2: the format name is under the MAC too. */
  private mac(format: string, entries: LedgerEntry[]): string {
    return createHmac('sha256', this.key).update(`${format}\n`).update(JSON.stringify(entries)).digest('hex');
  }

  private macV1(entries: LedgerFileV1['entries']): string {
    return createHmac('sha256', this.key).update(JSON.stringify(entries)).digest('hex');
  }
}
