/**
 * An experiment's configuration (what a researcher writes in FILE.json for
 * `fedmed experiment create`): model, initial parameters, strategy, sampling, deadlines and
 * local training hyper-parameters. The JSON schema is the REST API's body schema.
 */
import { PrivacyParameterError } from '../shared/privacy/privacyErrors.js';
import { zooModel } from '../models/zoo.js';
import { ModelSpecError } from '../shared/errors.js';
import { parseModelSpec, type ModelSpec } from '../shared/model/modelSpec.js';
import { FIT_CONFIG_PROPERTIES } from '../shared/protocol/messages.js';
import { checkPrivacyConfig, PRIVACY_CONFIG_SCHEMA, type PrivacyConfig } from '../shared/privacy/privacyConfig.js';
import { noiseForEpsilon } from '../shared/privacy/rdpAccountant.js';
import { updateNoiseMultiplier } from '../shared/privacy/adaptiveClipping.js';
import { SECAGG_CONFIG_SCHEMA, type SecAggConfig } from '../shared/secure/secagg/secaggParams.js';
import { createStrategy, securityConflict, STRATEGY_NAMES, STRATEGY_OPTIONS_SCHEMA, type StrategyName, type StrategyOptions } from '../shared/aggregation/createStrategy.js';
import { AggregationError } from '../shared/aggregation/aggregationRule.js';
import { CKKS_CONFIG_SCHEMA, type CkksConfig } from '../shared/secure/ckks/ckksParams.js';
import { CkksError } from '../shared/secure/ckks/ckksErrors.js';
import type { CkksKeySets } from './ckks/ckksKeySets.js';

export interface ExperimentConfig {
  name: string;
  /** `input`: how DICOM images become the model's input at the sites (shared/model/inputSpec.ts); part of the spec. */
  model: { zoo?: string; numClasses?: number; numFeatures?: number; hidden?: number[]; spec?: unknown; input?: unknown };
  /** Seed of the initial parameters (Glorot init). */
  initSeed: number;
  /** The aggregation rule (see createStrategy.ts); its options in `strategyOptions`. */
  strategy: StrategyName;
  strategyOptions?: StrategyOptions;
  /**
   * Server-side norm bounding (security "plain"): every update whose L2 norm exceeds the bound is
   * scaled down to it. A number is an absolute bound (updates stream into the sum); the default,
   * `{ medianMultiple: 3 }`, bounds each update to 3 × the median norm of the round's updates
   * (the round then keeps its updates until it closes); "none" turns bounding off. Reported per
   * round in the round's `security` (normBound, normBounded). Under SecAgg+ and CKKS each site's
   * influence is bounded at the site (the fixed-point range, or privacy.clip) instead.
   */
  normBound?: NormBound;
  /**
   * The largest example count a site's update may weigh with (FedAvg weight). A larger claim is
   * clipped to it and recorded in the round's site entry (`weightClipped`). Default 10,000.
   */
  maxExampleWeight?: number;
  /**
   * Sum updates in site order instead of arrival order (keeps every update in memory until the
   * round closes): the same updates give a bit-identical model. Simulations turn it on.
   */
  deterministic?: boolean;
  /** Seed for site sampling and the sites' shuffling. */
  seed: number;
  fractionFit: number;
  minFitClients: number;
  fractionEvaluate: number;
  minEvaluateClients: number;
  /** Seconds a site has to return its update (and its evaluation). */
  deadlineSeconds: number;
  fit: { epochs: number; batchSize: number; learningRate: number; optimizer: 'sgd' | 'adam'; proxMu: number; steps?: number };
  /** Differential privacy (client level); absent = none. */
  privacy?: PrivacyConfig;
  /**
   * How updates reach the coordinator: in the clear; masked by SecAgg+ (it only learns their
   * sum); or CKKS-encrypted (it only adds ciphertexts and never sees the model in the clear).
   */
  security?: 'plain' | 'secagg' | 'ckks';
  /** SecAgg+ parameters (security "secagg"). */
  secagg?: SecAggConfig;
  /** CKKS parameters (security "ckks"); the key set is fixed at creation. */
  ckks?: CkksConfig;
  /**
   * "gated" (default): a version a round publishes is deployed to all sites' inference services
   * only if its federated evaluation passes `gate` (coordinator/ota/deploymentGate.ts), else it is
   * held with the reason; "auto": every version is deployed; "manual": versions are deployed only
   * by `fedmed model publish`.
   */
  deploy?: 'gated' | 'auto' | 'manual';
  /** The deployment gate (deploy "gated"). */
  gate?: DeploymentGateConfig;
}

/** How the coordinator bounds each plain update's L2 norm (see ExperimentConfig.normBound). */
export type NormBound = number | { medianMultiple: number } | 'none';

/** The default norm bound of plain rounds: 3 × the round's median update norm. */
export const DEFAULT_NORM_BOUND = { medianMultiple: 3 } as const;
/** The default cap on the example weight one site may claim. */
export const DEFAULT_MAX_EXAMPLE_WEIGHT = 10_000;

export interface DeploymentGateConfig {
  /** Sites whose evaluation (accuracy) the decision needs at least (default 2). */
  minSites?: number;
  /** How much lower than the deployed version's accuracy a new version may evaluate (default 0.02). */
  tolerance?: number;
}

/** The gate's settings with their defaults. */
export function gateSettings(config: ExperimentConfig): Required<DeploymentGateConfig> {
  return { minSites: config.gate?.minSites ?? 2, tolerance: config.gate?.tolerance ?? 0.02 };
}

/** The weight an update or evaluation claiming `numExamples` examples gets (capped at maxExampleWeight). */
export function exampleWeight(config: ExperimentConfig, numExamples: number): number {
  return Math.min(numExamples, config.maxExampleWeight ?? DEFAULT_MAX_EXAMPLE_WEIGHT);
}

/** The norm bound a plain round applies (the default when the experiment sets none). */
export function normBoundOf(config: ExperimentConfig): number | { medianMultiple: number } | undefined {
  const b = config.normBound ?? DEFAULT_NORM_BOUND;
  return b === 'none' ? undefined : b;
}

/** Local training settings of an experiment (also a simulation's `fit`), with their defaults. */
export const EXPERIMENT_FIT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    epochs: { ...FIT_CONFIG_PROPERTIES.epochs, default: 1 },
    batchSize: { ...FIT_CONFIG_PROPERTIES.batchSize, default: 32 },
    learningRate: { ...FIT_CONFIG_PROPERTIES.learningRate, default: 0.001 },
    optimizer: { ...FIT_CONFIG_PROPERTIES.optimizer, default: 'adam' },
    proxMu: { ...FIT_CONFIG_PROPERTIES.proxMu, default: 0 },
    steps: FIT_CONFIG_PROPERTIES.steps,
  },
} as const;

export const EXPERIMENT_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'model'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    model: {
      type: 'object',
      additionalProperties: false,
      properties: {
        zoo: { type: 'string' },
        numClasses: { type: 'integer', minimum: 2, maximum: 100000 },
        numFeatures: { type: 'integer', minimum: 1, maximum: 1000000 },
        hidden: { type: 'array', items: { type: 'integer', minimum: 1 }, maxItems: 64 },
        spec: { type: 'object' },
        input: { type: 'object' },
      },
    },
    initSeed: { type: 'integer', default: 1 },
    strategy: { enum: STRATEGY_NAMES, default: 'fedavg' },
    strategyOptions: STRATEGY_OPTIONS_SCHEMA,
    normBound: {
      oneOf: [
        { type: 'number', exclusiveMinimum: 0 },
        { type: 'object', additionalProperties: false, required: ['medianMultiple'], properties: { medianMultiple: { type: 'number', minimum: 1, maximum: 1000 } } },
        { const: 'none' },
      ],
    },
    maxExampleWeight: { type: 'integer', minimum: 1, maximum: 1_000_000_000, default: DEFAULT_MAX_EXAMPLE_WEIGHT },
    deterministic: { type: 'boolean', default: false },
    seed: { type: 'integer', default: 1 },
    fractionFit: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1 },
    minFitClients: { type: 'integer', minimum: 1, default: 2 },
    fractionEvaluate: { type: 'number', minimum: 0, maximum: 1, default: 1 },
    minEvaluateClients: { type: 'integer', minimum: 0, default: 1 },
    deadlineSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 600 },
    privacy: PRIVACY_CONFIG_SCHEMA,
    security: { enum: ['plain', 'secagg', 'ckks'], default: 'plain' },
    secagg: SECAGG_CONFIG_SCHEMA,
    ckks: CKKS_CONFIG_SCHEMA,
    deploy: { enum: ['gated', 'auto', 'manual'], default: 'gated' },
    gate: {
      type: 'object',
      additionalProperties: false,
      properties: {
        minSites: { type: 'integer', minimum: 1, maximum: 100000, default: 2 },
        tolerance: { type: 'number', minimum: 0, maximum: 1, default: 0.02 },
      },
    },
    fit: EXPERIMENT_FIT_SCHEMA,
  },
} as const;

/** The model spec an experiment trains (from the zoo or given inline). */
export function experimentSpec(config: ExperimentConfig): ModelSpec {
  const m = config.model;
  if (m.spec !== undefined) return parseModelSpec(m.input === undefined ? m.spec : { ...(m.spec as object), input: m.input }, `experiment "${config.name}" model.spec`);
  if (!m.zoo) throw new ModelSpecError(`experiment "${config.name}": model needs "zoo" (e.g. "cnn-28") or "spec"`);
  const spec = zooModel(m.zoo, { numClasses: m.numClasses, numFeatures: m.numFeatures, hidden: m.hidden });
  return m.input === undefined ? spec : parseModelSpec({ ...spec, input: m.input }, `experiment "${config.name}" model.input`);
}

/**
 * Checks the privacy block and fixes the noise multiplier: a target ε over the planned rounds
 * (at sampling rate 1: the ledger grants no amplification) is turned into z once, at creation.
 */
export function resolvePrivacy(config: ExperimentConfig): void {
  const p = config.privacy;
  if (!p) return;
  checkPrivacyConfig(p);
  // Sites refuse distributed noise the coordinator could see unsummed (see edge-client/federation/siteNoise.ts).
  if (p.mode === 'distributed' && config.security !== 'secagg') {
    throw new PrivacyParameterError(`privacy.mode "distributed" needs security "secagg": sites add a share of the noise that only a secure sum makes whole (under ${config.security === 'ckks' ? 'CKKS they cannot verify how many updates it is summed with' : 'plain security the coordinator would see each update with only its share'}); use mode "local", or security "secagg"`);
  }
  if (p.noiseMultiplier === undefined) {
    // At q = 1: fixed-size sampling from a public seed gives no amplification (rounds/privacyLedger.ts).
    p.noiseMultiplier = noiseForEpsilon({ targetEpsilon: p.targetEpsilon!, samplingRate: 1, steps: p.plannedRounds!, delta: p.delta });
  }
  // Fail now, not at round 1, if the count noise leaves nothing for the update noise.
  if (p.adaptiveClipping?.countStddev !== undefined) updateNoiseMultiplier(p.noiseMultiplier, p.adaptiveClipping.countStddev);
}

/** Checks the strategy, its options and its combination with the security mode (at creation). */
export function checkStrategy(config: ExperimentConfig): void {
  createStrategy(config.strategy ?? 'fedavg', config.strategyOptions ?? {});
  const conflict = securityConflict(config.strategy ?? 'fedavg', config.security ?? 'plain');
  if (conflict) throw new AggregationError(conflict);
  if (config.normBound !== undefined && config.normBound !== 'none' && (config.security ?? 'plain') !== 'plain') {
    throw new AggregationError(`normBound is applied by the coordinator to each update, which security "${config.security}" hides; bound updates at the sites with privacy.clip instead`);
  }
  if (config.security === 'ckks') {
    // Under CKKS the sites compute the next model from the decrypted mean: no server optimiser.
    const strategy = config.strategy ?? 'fedavg';
    if (strategy !== 'fedavg' && strategy !== 'fedprox') throw new AggregationError(`strategy ${strategy} needs the coordinator to compute on the model, which security "ckks" hides from it; use fedavg or fedprox, or security "secagg" (the coordinator sees the aggregate only)`);
    if (config.privacy?.mode === 'central') throw new AggregationError('privacy.mode "central" has the coordinator add noise to the aggregate, which security "ckks" hides from it; use mode "local" (each site noises its own update)');
  }
  if (config.ckks !== undefined && config.security !== 'ckks') throw new AggregationError(`"ckks" settings need security "ckks" (this experiment has "${config.security ?? 'plain'}")`);
}

/** CKKS: fixes the experiment's key set at creation (the newest one, unless the config names one). */
export function resolveKeySet(config: ExperimentConfig, keySets: CkksKeySets): void {
  if (config.security !== 'ckks') return;
  const named = config.ckks?.keySet;
  const set = named ? keySets.find(named) : keySets.newest();
  if (!set) throw new CkksError(named ? `no CKKS key set ${named}` : 'security "ckks" needs a key set: the federation admin runs "fedmed federation keys create" first');
  if (set.sites.length === 0) throw new CkksError(`CKKS key set ${set.id} was granted to no site yet ("fedmed federation keys grant")`);
  config.ckks = { ...config.ckks, keySet: set.id };
}
