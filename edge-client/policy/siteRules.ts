/**
 * The one place the edge client asks "may this leave, and in what form?". Every rule of the
 * site policy (sitePolicy.ts) is applied here, in this order, to what `fit_ins`/`eval_ins` say:
 *
 *   1. the policy file itself (re-read each round; invalid → every round refused, naming the field)
 *   2. protection: the required security, the experiment's pinned protection, one release per round
 *   3. privacy: DP required or not, allowed modes, minimum z, the noise the site computes itself
 *   4. data: at least `release.minExamples` local examples
 *   5. approval: the operator approved exactly these experiment settings
 *   6. budget: the site's own ledger, charged with every mechanism the round releases
 *
 * and then shapes the release: the example count and the metrics per `release`, each either
 * part of the accounted mechanism or withheld under DP. The client only carries out the plan.
 */
import type { DataStatus, MessageOf, RefusalKind } from '../../shared/protocol/messages.js';
import { gaussianSample } from '../../shared/privacy/gaussianNoise.js';
import { clipBitMechanism, type PrivacyMechanism } from '../../shared/privacy/privacyMechanism.js';
import { activeThreshold, DEFAULT_SITE_SECAGG_RULES, type SiteSecAggRules } from '../../shared/secure/secagg/secaggParams.js';
import { ExperimentSecurity } from '../federation/experimentSecurity.js';
import { PrivacyLedger } from '../federation/privacyLedger.js';
import { siteNoise, type SiteNoise } from '../federation/siteNoise.js';
import { ExperimentApprovals } from './experimentApprovals.js';
import { loadSitePolicy, policyHash, SitePolicyError, type SitePolicy } from './sitePolicy.js';

export interface Refusal {
  kind: RefusalKind;
  reason: string;
}

/** What the site will do for a fit_ins it accepts. */
export interface FitPlan {
  policy: SitePolicy;
  noise: SiteNoise;
  /** The site runs a DP mechanism and charges its ledger. */
  charge: boolean;
  /** Adaptive clipping: stddev of the noise on the clipped/not-clipped bit (sent in the clear). */
  clipBitStddev: number | null;
}

/** The released example count and metrics, and what they cost (besides the update itself). */
export interface ShapedRelease {
  numExamples: number;
  metrics?: { loss?: number; accuracy?: number };
  mechanisms: PrivacyMechanism[];
}

export class SiteRules {
  readonly security: ExperimentSecurity;
  readonly approvals: ExperimentApprovals;
  private ledger: PrivacyLedger;
  private lastHash: string | null = null;
  private invalid: string | null = null;

  constructor(
    private readonly stateDir: string,
    /** The policy in force when STATE_DIR/policy.json does not exist (from the command line). */
    private readonly fallback: SitePolicy,
    private readonly log: (event: string, detail?: Record<string, unknown>) => void,
  ) {
    this.security = new ExperimentSecurity(stateDir);
    this.approvals = new ExperimentApprovals(stateDir);
    // Refused at start: a policy file that does not validate (the error names the field).
    const p = loadSitePolicy(stateDir) ?? fallback;
    this.lastHash = policyHash(p);
    this.ledger = new PrivacyLedger(stateDir, budgetOf(p));
  }

  /** The policy now in force (re-read; a change is logged and takes effect from this round). */
  current(): SitePolicy {
    let p: SitePolicy;
    try {
      p = loadSitePolicy(this.stateDir) ?? this.fallback;
    } catch (err) {
      if (!(err instanceof SitePolicyError)) throw err;
      if (this.invalid !== err.message) this.log('policy_invalid', { reason: err.message });
      this.invalid = err.message;
      throw err;
    }
    this.invalid = null;
    const hash = policyHash(p);
    if (hash !== this.lastHash) {
      this.log('policy_changed', { from: this.lastHash, to: hash });
      this.lastHash = hash;
      const b = budgetOf(p);
      if (b.epsilon !== this.ledger.budget.epsilon || b.delta !== this.ledger.budget.delta || b.perExperiment !== this.ledger.budget.perExperiment) this.ledger = new PrivacyLedger(this.stateDir, b);
    }
    return p;
  }

  /** SecAgg+ rules of the policy now in force. */
  secaggRules(p: SitePolicy): SiteSecAggRules {
    const fraction = p.security.minThresholdFraction;
    return { minHolders: p.security.minGroupSize, minThreshold: (h) => Math.max(DEFAULT_SITE_SECAGG_RULES.minThreshold(h), activeThreshold(h), Math.ceil(fraction * h)) };
  }

  /** Decides a fit_ins: the plan, or the refusal (nothing is released). */
  fit(m: MessageOf<'fit_ins'>, localExamples: number): { plan: FitPlan } | { refusal: Refusal } {
    let p: SitePolicy;
    try {
      p = this.current();
    } catch (err) {
      return { refusal: { kind: 'policy', reason: `this site's policy file is invalid; it trains for no one until it is fixed: ${(err as Error).message}` } };
    }
    const policy = (reason: string): { refusal: Refusal } => ({ refusal: { kind: 'policy', reason } });
    const security = this.security.refusal(m, p.security.required);
    if (security) return policy(security);
    const priv = m.privacy;
    if (!priv && !p.privacy.allowNonDp) return policy(p.privacy.budget ? 'this site requires differential privacy (a privacy budget is configured) and the experiment has none' : 'this site accepts only differentially private experiments (site policy privacy.allowNonDp = false)');
    const noise = siteNoise(m, { hasBudget: p.privacy.budget !== null, minNoiseMultiplier: p.privacy.minNoiseMultiplier });
    if ('refusal' in noise) return policy(noise.refusal);
    if (priv && !p.privacy.allowedModes.includes(priv.mode)) return policy(`privacy mode "${priv.mode}" is not allowed by this site's policy (allowed: ${p.privacy.allowedModes.join(', ') || 'none'})`);
    // (The refusal does not say how many: the count itself is the site's to keep.)
    if (localExamples < p.release.minExamples) return policy(`this site has fewer local training examples than its policy's minimum of ${p.release.minExamples}; it releases nothing from so few`);
    if (p.experiments.approval === 'required') {
      const a = this.approvals.check(m);
      if (a.status === 'pending') return { refusal: { kind: 'approval_pending', reason: `experiment ${m.experiment} awaits this site's approval (settings ${a.hash.slice(0, 12)}…): the site operator reviews it with "fedmed edge experiments" and runs "fedmed edge approve ${m.experiment}"` } };
      if (a.status === 'rejected') return { refusal: { kind: 'experiment_rejected', reason: `the site operator rejected experiment ${m.experiment}: ${a.reason}` } };
    }
    const plan: FitPlan = {
      policy: p,
      noise: noise.noise,
      charge: noise.charge,
      // The bit leaves in the clear, so under local and distributed DP it carries this site's full
      // noise: at least z/2 (multiplier z on sensitivity 1/2), more if the coordinator asks. (In
      // central mode — a site without a budget — the coordinator noises the sum of the bits.)
      clipBitStddev: priv?.countNoiseStddev === undefined ? null : priv.mode === 'central' ? priv.countNoiseStddev : Math.max(priv.countNoiseStddev, priv.noiseMultiplier / 2),
    };
    if (plan.charge) {
      const refusal = this.ledger.refusal(m.experiment, m.round, this.upfrontMechanisms(m, plan));
      if (refusal) return { refusal: { kind: 'privacy_budget', reason: refusal } };
    }
    return { plan };
  }

  /**
   * The example count and metrics this round releases, by policy; noise drawn here. Under DP the
   * "training accuracy" released is that of the model the round started from (the received
   * global model, already public) on the local training examples: one record changes it by at
   * most 1/n ≤ 1/minExamples. (The accuracy of the model trained here would not do: the trained
   * model itself depends on every record, so one record could move it by up to 1.)
   */
  shapeFit(m: MessageOf<'fit_ins'>, plan: FitPlan, numExamples: number, metrics: { loss: number; accuracy: number }, startAccuracy?: number): ShapedRelease {
    const r = plan.policy.release;
    // Any DP experiment — central too, where the site itself adds no noise — releases by release.dp.
    const ckksWithheld = m.ckks !== undefined && r.ckksMetrics === 'withheld';
    if (!m.privacy) return { numExamples: this.countWithoutDp(plan.policy, numExamples), ...(r.metrics === 'exact' && !ckksWithheld ? { metrics } : {}), mechanisms: [] };
    const z = m.privacy!.noiseMultiplier;
    const out: ShapedRelease = { numExamples: 1, mechanisms: this.releaseCosts(plan, z) };
    if (r.dp.exampleCount === 'noised') out.numExamples = Math.max(1, Math.round(numExamples + gaussianSample(z))); // sensitivity 1
    // Sensitivity 1/minExamples, a bound that does not depend on the private n; the loss is unbounded: withheld.
    if (r.dp.metrics === 'noised' && startAccuracy !== undefined && !ckksWithheld) out.metrics = { accuracy: clamp01(startAccuracy + gaussianSample(z / r.minExamples)) };
    return out;
  }

  /**
   * Whether an error text (a failed training, a model that does not fit the data) may go to the
   * coordinator: only when the site releases its counts and metrics exactly anyway — such texts
   * can state the number of examples (tensor shapes) or describe the data.
   */
  errorDetailsMayLeave(m: MessageOf<'fit_ins'>, p: SitePolicy): boolean {
    return !m.privacy && !m.ckks && p.release.exampleCount === 'exact' && p.release.metrics === 'exact';
  }

  /** Whether this DP round releases a noised accuracy (the client then measures the received model on its training data). */
  releasesNoisedAccuracy(m: MessageOf<'fit_ins'>, plan: FitPlan): boolean {
    return m.privacy !== undefined && plan.policy.release.dp.metrics === 'noised';
  }

  /** Why this site would not release these mechanisms now (its budget), or null. */
  budgetRefusal(m: MessageOf<'fit_ins'>, mechanisms: PrivacyMechanism[]): string | null {
    return this.ledger.refusal(m.experiment, m.round, mechanisms);
  }

  /** Charges the ledger (on disk, synced) — call right before the release leaves. */
  charge(m: MessageOf<'fit_ins'>, plan: FitPlan, mechanisms: PrivacyMechanism[]): void {
    this.ledger.charge(m.experiment, m.round, mechanisms);
    this.log('privacy_charged', { experiment: m.experiment, round: m.round, mechanisms: mechanisms.length, spent: this.ledger.spent(), experimentSpent: this.ledger.spent(m.experiment), delta: this.ledger.budget.delta });
    // The round's evaluation was paid with it (releaseCosts): one evaluation of this round may leave.
    if (plan.policy.release.dp.metrics === 'noised') this.security.recordEvaluationPaid(m.experiment, m.round, m.privacy!.noiseMultiplier);
  }

  /** The metrics an evaluation may release, or the refusal. */
  evaluation(m: MessageOf<'eval_ins'>, localExamples: number): { release: 'exact'; numExamples: (n: number) => number; errorDetails: boolean } | { release: 'noised'; accuracyStddev: number } | { refusal: Refusal } {
    let p: SitePolicy;
    try {
      p = this.current();
    } catch (err) {
      return { refusal: { kind: 'policy', reason: `this site's policy file is invalid: ${(err as Error).message}` } };
    }
    const known = this.security.known(m.experiment);
    if ((m.ckksKeySet !== undefined || known?.security === 'ckks') && p.release.ckksMetrics === 'withheld') return { refusal: { kind: 'policy', reason: 'this site withholds the metrics of models it decrypts under CKKS (site policy release.ckksMetrics)' } };
    // An experiment this site never trained for: it does not know whether it is DP; a site that accepts only DP assumes it is.
    const dp = known ? known.dp : p.privacy.budget !== null || !p.privacy.allowNonDp;
    if (!dp) return p.release.metrics === 'exact' ? { release: 'exact', numExamples: (n: number) => this.countWithoutDp(p, n), errorDetails: p.release.exampleCount === 'exact' } : { refusal: { kind: 'policy', reason: 'this site withholds evaluation metrics (site policy release.metrics)' } };
    if (p.release.dp.metrics !== 'noised') return { refusal: { kind: 'policy', reason: 'this site withholds metrics of differentially private experiments (site policy release.dp.metrics)' } };
    // Paid with the fit of the same round, once the ledger holds that charge: only then, and once.
    if (known?.evaluationPaid?.round !== m.round) return { refusal: { kind: 'policy', reason: `this site releases a DP experiment's evaluation only for a round whose release its ledger charged with the evaluation's cost; round ${m.round} is not one` } };
    if (known.lastEvaluation !== undefined && m.round <= known.lastEvaluation) return { refusal: { kind: 'policy', reason: `this site already released the evaluation of round ${known.lastEvaluation}` } };
    if (localExamples < p.release.minExamples) return { refusal: { kind: 'policy', reason: `this site has fewer local evaluation examples than its policy's minimum of ${p.release.minExamples}` } };
    return { release: 'noised', accuracyStddev: known.evaluationPaid.noiseMultiplier / p.release.minExamples };
  }

  /** ε spent (all experiments, or one), at the budget's δ. */
  spent(experiment?: string): number {
    return this.ledger.spent(experiment);
  }

  /** Mechanisms known before training: the update (as a Gaussian of multiplier z; the exact one is charged at release) and the rest. */
  private upfrontMechanisms(m: MessageOf<'fit_ins'>, plan: FitPlan): PrivacyMechanism[] {
    const z = m.privacy!.noiseMultiplier;
    return [{ kind: 'gaussian', noiseMultiplier: z }, ...this.releaseCosts(plan, z)];
  }

  /** What a DP round releases besides the update, each as the Gaussian mechanism it is. */
  private releaseCosts(plan: FitPlan, z: number): PrivacyMechanism[] {
    const r = plan.policy.release.dp;
    const out: PrivacyMechanism[] = [];
    if (r.exampleCount === 'noised') out.push({ kind: 'gaussian', noiseMultiplier: z });
    // Training accuracy now, and the evaluation of this round's model (paid with the round).
    if (r.metrics === 'noised') out.push({ kind: 'gaussian', noiseMultiplier: z }, { kind: 'gaussian', noiseMultiplier: z });
    // (Central mode: the coordinator noises the sum of the bits; the site runs no mechanism on it.)
    if (plan.clipBitStddev !== null && plan.charge) out.push(clipBitMechanism(plan.clipBitStddev));
    return out;
  }

  /**
   * The site's readiness as it may leave (`data_status`): the labelled examples per split by
   * `release.exampleCount`, and whether the training split reaches `release.minExamples`. A site
   * that trains only under DP never releases an exact count in a round, so it does not here
   * either: withheld, only `ready` (a bit its refusals of rounds would tell anyway). An invalid
   * policy file withholds everything and says not ready (it trains for no one).
   *
   * Bucketed counts are sticky downwards: a lower bucket is told only once the count is a whole
   * bucket below the one told (`previous`), and `ready` follows the told count; otherwise a count
   * going 29, 30, 29, 30 would tell the coordinator the exact count at each step, and `ready` the
   * moment it crossed a minimum inside a bucket.
   */
  dataStatus(counts: { train: number; validation: number; test: number }, previous: DataStatus | null = null): DataStatus {
    let p: SitePolicy;
    try {
      p = this.current();
    } catch {
      return { examples: null, release: 'withheld', ready: false, minExamples: this.fallback.release.minExamples };
    }
    const r = p.release;
    const dpOnly = p.privacy.budget !== null || !p.privacy.allowNonDp;
    if (dpOnly || r.exampleCount === 'withheld') return { examples: null, release: 'withheld', ready: counts.train >= r.minExamples, minExamples: r.minExamples };
    if (r.exampleCount === 'exact') return { examples: { ...counts }, release: 'exact', ready: counts.train >= r.minExamples, minExamples: r.minExamples };
    const told = previous?.release === 'bucketed' ? previous.examples : null;
    const shape = (n: number, before: number | undefined) => {
      const bucket = Math.floor(n / r.bucketSize) * r.bucketSize;
      return before !== undefined && bucket < before && n > before - r.bucketSize ? before : bucket;
    };
    const examples = { train: shape(counts.train, told?.train), validation: shape(counts.validation, told?.validation), test: shape(counts.test, told?.test) };
    return { examples, release: 'bucketed', ready: examples.train >= r.minExamples, minExamples: r.minExamples };
  }

  /** The example count an experiment without DP releases (fit and evaluation alike). */
  countWithoutDp(p: SitePolicy, n: number): number {
    const r = p.release;
    return r.exampleCount === 'exact' ? n : r.exampleCount === 'bucketed' ? Math.max(1, Math.floor(n / r.bucketSize) * r.bucketSize) : 1;
  }
}

function budgetOf(p: SitePolicy): { epsilon: number; delta: number; perExperiment?: number } {
  return p.privacy.budget ?? { epsilon: Infinity, delta: 1e-5 };
}

export function clamp01(x: number): number {
  return Math.min(1, Math.max(0, x));
}
