/**
 * A hospital's site policy (STATE_DIR/policy.json): the rules its edge holds every experiment
 * to, whatever the coordinator asks. Only the hospital edits it (`fedmed edge policy init`,
 * then by hand; `fedmed edge policy check` validates). The running edge re-reads it before each
 * round, so a change takes effect at the next round and is logged; a file that stops validating
 * makes the edge refuse rounds (naming the field) until it is fixed — never a silent fallback.
 *
 * Without a policy file, the edge runs under the policy its command-line flags describe
 * (`policyFromFlags`), which `policy init` writes out for the operator to keep.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { writeFileAtomic } from '../../shared/atomicFile.js';
import { FedmedError } from '../../shared/errors.js';
import type { PrivacyMode } from '../../shared/privacy/privacyConfig.js';
import { REQUIRED_SECURITY, type RequiredSecurity } from '../federation/experimentSecurity.js';

export const SITE_POLICY_FORMAT = 'fedmed.site-policy/1';

/**
 * The default largest accuracy drop (deployment.maxAccuracyDrop): a version the coordinator
 * offers must not score more than this below the version serving, on the site's local holdout
 * (test) split. Applies only when the site has a holdout split; `null` in policy.json turns it off.
 */
export const DEFAULT_MAX_ACCURACY_DROP = 0.05;

export class SitePolicyError extends FedmedError {
  constructor(message: string) {
    super('SITE_POLICY_INVALID', message);
  }
}

/** What leaves the site besides the update, per field. */
export interface ReleasePolicy {
  /** Rounds on fewer local training examples are refused. */
  minExamples: number;
  /** Experiments without DP: the example count as is, rounded down to a multiple of `bucketSize`, or withheld (sent as 1). */
  exampleCount: 'exact' | 'bucketed' | 'withheld';
  bucketSize: number;
  /** Experiments without DP: training and evaluation metrics as they are, or withheld. */
  metrics: 'exact' | 'withheld';
  /**
   * Experiments with DP: anything released is part of the accounted mechanism or not sent.
   * `noised`: the count gets N(0, z²) (sensitivity 1), the accuracy N(0, (z/n)²) (sensitivity
   * 1/n), each charged to the ledger as another Gaussian release; `withheld`: not sent.
   */
  dp: { exampleCount: 'withheld' | 'noised'; metrics: 'withheld' | 'noised' };
  /**
   * CKKS experiments: metrics of a model this site decrypted leave (by the rules above) or are
   * withheld. Under CKKS the site cannot check that what it decrypts is an aggregate of many
   * sites: a coordinator can pass off another site's ciphertext, and the metrics would then tell
   * about that site's update (see the README's trust model). Withheld by default.
   */
  ckksMetrics: 'withheld' | 'released';
}

export interface SitePolicy {
  format: typeof SITE_POLICY_FORMAT;
  privacy: {
    /** Total ε (all experiments) at `delta`; null: no budget (DP rounds are recorded, not limited). */
    budget: { epsilon: number; delta: number; perExperiment?: number } | null;
    /** Smallest noise multiplier z the site trains under. */
    minNoiseMultiplier: number;
    /** DP modes the site accepts (central is refused anyway while there is a budget). */
    allowedModes: PrivacyMode[];
    /** Whether experiments without DP are accepted at all. */
    allowNonDp: boolean;
  };
  security: {
    required: RequiredSecurity;
    /** SecAgg+: smallest share group (the site and its neighbours). */
    minGroupSize: number;
    /** SecAgg+: smallest reconstruction threshold, as a fraction of the group (never below a 2/3 majority). */
    minThresholdFraction: number;
  };
  experiments: { approval: 'required' | 'auto' };
  release: ReleasePolicy;
  deployment: {
    /** auto: verified versions serve at once; manual: stored, served after `fedmed edge activate`. */
    mode: 'auto' | 'manual';
    /**
     * A version the coordinator offers may lose at most this much accuracy on the local test
     * (holdout) split against the one serving (default DEFAULT_MAX_ACCURACY_DROP = 0.05; null: no
     * check). Without a holdout split there is nothing to compare on: the edge says so at start.
     */
    maxAccuracyDrop: number | null;
    /** …and must reach at least this accuracy there (0: no floor). */
    accuracyFloor: number;
  };
}

const MODES: PrivacyMode[] = ['local', 'distributed', 'central'];

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'privacy', 'security', 'experiments', 'release', 'deployment'],
  properties: {
    format: { const: SITE_POLICY_FORMAT },
    privacy: {
      type: 'object',
      additionalProperties: false,
      required: ['budget', 'minNoiseMultiplier', 'allowedModes', 'allowNonDp'],
      properties: {
        budget: {
          oneOf: [
            { type: 'null' },
            {
              type: 'object',
              additionalProperties: false,
              required: ['epsilon', 'delta'],
              properties: { epsilon: { type: 'number', exclusiveMinimum: 0 }, delta: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 }, perExperiment: { type: 'number', exclusiveMinimum: 0 } },
            },
          ],
        },
        minNoiseMultiplier: { type: 'number', minimum: 0 },
        allowedModes: { type: 'array', uniqueItems: true, items: { enum: MODES } },
        allowNonDp: { type: 'boolean' },
      },
    },
    security: {
      type: 'object',
      additionalProperties: false,
      required: ['required', 'minGroupSize', 'minThresholdFraction'],
      properties: { required: { enum: REQUIRED_SECURITY }, minGroupSize: { type: 'integer', minimum: 3, maximum: 255 }, minThresholdFraction: { type: 'number', minimum: 0, maximum: 1 } },
    },
    experiments: { type: 'object', additionalProperties: false, required: ['approval'], properties: { approval: { enum: ['required', 'auto'] } } },
    release: {
      type: 'object',
      additionalProperties: false,
      required: ['minExamples', 'exampleCount', 'bucketSize', 'metrics', 'dp', 'ckksMetrics'],
      properties: {
        minExamples: { type: 'integer', minimum: 1 },
        exampleCount: { enum: ['exact', 'bucketed', 'withheld'] },
        bucketSize: { type: 'integer', minimum: 1 },
        metrics: { enum: ['exact', 'withheld'] },
        dp: {
          type: 'object',
          additionalProperties: false,
          required: ['exampleCount', 'metrics'],
          properties: { exampleCount: { enum: ['withheld', 'noised'] }, metrics: { enum: ['withheld', 'noised'] } },
        },
        ckksMetrics: { enum: ['withheld', 'released'] },
      },
    },
    deployment: {
      type: 'object',
      additionalProperties: false,
      required: ['mode', 'maxAccuracyDrop', 'accuracyFloor'],
      properties: { mode: { enum: ['auto', 'manual'] }, maxAccuracyDrop: { oneOf: [{ type: 'null' }, { type: 'number', minimum: 0, maximum: 1 }] }, accuracyFloor: { type: 'number', minimum: 0, maximum: 1 } },
    },
  },
} as const;

const validate = new Ajv({ allErrors: false, strict: true }).compile(SCHEMA);

/** The rules a site starts from: no budget, any protection, auto approval, what leaves today, offered versions no worse locally than the one serving by more than 0.05. */
export function defaultPolicy(): SitePolicy {
  return {
    format: SITE_POLICY_FORMAT,
    privacy: { budget: null, minNoiseMultiplier: 0, allowedModes: [...MODES], allowNonDp: true },
    security: { required: 'any', minGroupSize: 3, minThresholdFraction: 0 },
    experiments: { approval: 'auto' },
    release: { minExamples: 1, exampleCount: 'exact', bucketSize: 10, metrics: 'exact', dp: { exampleCount: 'withheld', metrics: 'withheld' }, ckksMetrics: 'withheld' },
    deployment: { mode: 'auto', maxAccuracyDrop: DEFAULT_MAX_ACCURACY_DROP, accuracyFloor: 0 },
  };
}

/** A site policy from `fedmed edge start`'s flags (the policy in force when there is no file). */
export interface PolicyFlags {
  privacyBudget?: number;
  privacyBudgetPerExperiment?: number;
  privacyDelta?: number;
  privacyMinNoiseMultiplier?: number;
  secaggMinGroup?: number;
  requireSecurity?: RequiredSecurity;
  requireApproval?: boolean;
  accuracyFloor?: number;
  /** null: no relative check. */
  maxAccuracyDrop?: number | null;
  releaseCkksMetrics?: boolean;
}

export function policyFromFlags(f: PolicyFlags): SitePolicy {
  const p = defaultPolicy();
  if (f.privacyBudget !== undefined) {
    p.privacy.budget = { epsilon: f.privacyBudget, delta: f.privacyDelta ?? 1e-5, ...(f.privacyBudgetPerExperiment !== undefined ? { perExperiment: f.privacyBudgetPerExperiment } : {}) };
    // A site with a budget accepts only noise it adds itself, and every round must be DP.
    p.privacy.allowedModes = ['local', 'distributed'];
    p.privacy.allowNonDp = false;
  }
  if (f.privacyMinNoiseMultiplier !== undefined) p.privacy.minNoiseMultiplier = f.privacyMinNoiseMultiplier;
  if (f.secaggMinGroup !== undefined) p.security.minGroupSize = f.secaggMinGroup;
  if (f.requireSecurity !== undefined) p.security.required = f.requireSecurity;
  if (f.requireApproval) p.experiments.approval = 'required';
  if (f.accuracyFloor !== undefined) p.deployment.accuracyFloor = f.accuracyFloor;
  if (f.maxAccuracyDrop !== undefined) p.deployment.maxAccuracyDrop = f.maxAccuracyDrop;
  if (f.releaseCkksMetrics) p.release.ckksMetrics = 'released';
  return parseSitePolicy(p, 'flags');
}

/** Validates a policy document; the error names the field that is wrong. */
export function parseSitePolicy(doc: unknown, where: string): SitePolicy {
  if (!validate(doc)) {
    const e = validate.errors![0];
    const field = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(top level)';
    const detail = e.keyword === 'additionalProperties' ? `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"` : e.keyword === 'required' ? `missing field "${(e.params as { missingProperty: string }).missingProperty}"` : e.keyword === 'enum' ? `must be one of ${JSON.stringify((e.params as { allowedValues: unknown[] }).allowedValues)}` : e.message;
    throw new SitePolicyError(`${where}: site policy field ${field}: ${detail}`);
  }
  const p = doc as unknown as SitePolicy;
  if (p.privacy.budget && p.privacy.allowedModes.includes('central')) throw new SitePolicyError(`${where}: site policy field privacy.allowedModes: "central" cannot be allowed with a privacy budget (the coordinator would see this site's update un-noised)`);
  if (p.privacy.budget && p.privacy.allowNonDp) throw new SitePolicyError(`${where}: site policy field privacy.allowNonDp: must be false with a privacy budget (a round without DP would release what the budget cannot account)`);
  return p;
}

export function policyPath(stateDir: string): string {
  return join(stateDir, 'policy.json');
}

/** The policy file in this state dir, or null when there is none. */
export function loadSitePolicy(stateDir: string): SitePolicy | null {
  const file = policyPath(stateDir);
  if (!existsSync(file)) return null;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new SitePolicyError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  return parseSitePolicy(doc, file);
}

export function writeSitePolicy(stateDir: string, p: SitePolicy): void {
  writeFileAtomic(policyPath(stateDir), Buffer.from(`${JSON.stringify(parseSitePolicy(p, 'policy'), null, 2)}\n`), 0o600);
}

/** A short hash of a policy's content (logged when it changes). */
export function policyHash(p: SitePolicy): string {
  return createHash('sha256').update(JSON.stringify(p)).digest('hex').slice(0, 16);
}
