/**
 * An experiment's configuration (what a researcher writes in FILE.json for
 * `fedmed experiment create`): model, initial parameters, strategy, sampling, deadlines and
 * local training hyper-parameters. The JSON schema is the REST API's body schema.
 */
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

export interface ExperimentConfig {
  name: string;
  model: { zoo?: string; numClasses?: number; numFeatures?: number; hidden?: number[]; spec?: unknown };
  /** Seed of the initial parameters (Glorot init). */
  initSeed: number;
  /** The aggregation rule (see createStrategy.ts); its options in `strategyOptions`. */
  strategy: StrategyName;
  strategyOptions?: StrategyOptions;
  /** Server-side norm bounding (plain mode): every update is scaled down to at most this L2 norm. */
  normBound?: number;
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
  /** How updates reach the coordinator: in the clear, or masked by SecAgg+ (it only learns their sum). */
  security?: 'plain' | 'secagg';
  /** SecAgg+ parameters (security "secagg"). */
  secagg?: SecAggConfig;
  /**
   * "auto" (default): every version a round publishes is deployed to all sites' inference
   * services; "manual": versions are deployed only by `fedmed model publish`.
   */
  deploy?: 'auto' | 'manual';
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
      },
    },
    initSeed: { type: 'integer', default: 1 },
    strategy: { enum: STRATEGY_NAMES, default: 'fedavg' },
    strategyOptions: STRATEGY_OPTIONS_SCHEMA,
    normBound: { type: 'number', exclusiveMinimum: 0 },
    deterministic: { type: 'boolean', default: false },
    seed: { type: 'integer', default: 1 },
    fractionFit: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1 },
    minFitClients: { type: 'integer', minimum: 1, default: 2 },
    fractionEvaluate: { type: 'number', minimum: 0, maximum: 1, default: 1 },
    minEvaluateClients: { type: 'integer', minimum: 0, default: 1 },
    deadlineSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 600 },
    privacy: PRIVACY_CONFIG_SCHEMA,
    security: { enum: ['plain', 'secagg'], default: 'plain' },
    secagg: SECAGG_CONFIG_SCHEMA,
    deploy: { enum: ['auto', 'manual'], default: 'auto' },
    fit: EXPERIMENT_FIT_SCHEMA,
  },
} as const;

/** The model spec an experiment trains (from the zoo or given inline). */
export function experimentSpec(config: ExperimentConfig): ModelSpec {
  const m = config.model;
  if (m.spec !== undefined) return parseModelSpec(m.spec, `experiment "${config.name}" model.spec`);
  if (!m.zoo) throw new ModelSpecError(`experiment "${config.name}": model needs "zoo" (e.g. "cnn-28") or "spec"`);
  return zooModel(m.zoo, { numClasses: m.numClasses, numFeatures: m.numFeatures, hidden: m.hidden });
}

/**
 * Checks the privacy block and fixes the noise multiplier: a target ε over the planned rounds
 * (at the configured sampling fraction) is turned into z once, at creation.
 */
export function resolvePrivacy(config: ExperimentConfig): void {
  const p = config.privacy;
  if (!p) return;
  checkPrivacyConfig(p);
  if (p.noiseMultiplier === undefined) {
    p.noiseMultiplier = noiseForEpsilon({ targetEpsilon: p.targetEpsilon!, samplingRate: config.fractionFit, steps: p.plannedRounds!, delta: p.delta });
  }
  // Fail now, not at round 1, if the count noise leaves nothing for the update noise.
  if (p.adaptiveClipping?.countStddev !== undefined) updateNoiseMultiplier(p.noiseMultiplier, p.adaptiveClipping.countStddev);
}

/** Checks the strategy, its options and its combination with the security mode (at creation). */
export function checkStrategy(config: ExperimentConfig): void {
  createStrategy(config.strategy ?? 'fedavg', config.strategyOptions ?? {});
  const conflict = securityConflict(config.strategy ?? 'fedavg', config.security ?? 'plain');
  if (conflict) throw new AggregationError(conflict);
  if (config.normBound !== undefined && (config.security ?? 'plain') !== 'plain') {
    throw new AggregationError(`normBound is applied by the coordinator to each update, which security "${config.security}" hides; bound updates at the sites with privacy.clip instead`);
  }
}
