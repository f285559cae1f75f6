/**
 * A simulation's configuration (`fedmed simulate --config FILE.json`): the data and how it is
 * split over sites, the model, the strategies to compare, the federation's settings (the same
 * fields as an experiment), faults to inject, the transport, and the baselines. Validated by a
 * JSON schema with defaults; errors name the field.
 */
import { availableParallelism } from 'node:os';
import { Ajv } from 'ajv';
import { UsageError } from '../shared/errors.js';
import { createStrategy, securityConflict, STRATEGY_NAMES, STRATEGY_OPTIONS_SCHEMA, type StrategyName, type StrategyOptions } from '../shared/aggregation/createStrategy.js';
import { PRIVACY_CONFIG_SCHEMA, type PrivacyConfig } from '../shared/privacy/privacyConfig.js';
import { SECAGG_CONFIG_SCHEMA, type SecAggConfig } from '../shared/secure/secagg/secaggParams.js';
import type { FitConfig } from '../shared/protocol/messages.js';
import { EXPERIMENT_FIT_SCHEMA } from '../coordinator/experimentConfig.js';
import type { FaultPoint } from '../edge-client/federation/edgeClient.js';

export interface SimulationConfig {
  name: string;
  /** Seeds everything seeded: partitions, splits, initial model, sampling, shuffling, faults. */
  seed: number;
  data: {
    source: 'heart-disease' | 'medmnist' | 'csv' | 'synthetic-tabular' | 'synthetic-images';
    /** Folder (heart-disease) or file (medmnist .npz, csv). */
    path?: string;
    labelColumn?: string | number;
    binarizeLabel?: boolean;
    /** synthetic-tabular: examples, features, classes; synthetic-images: examples, classes (28×28, 1 channel). */
    examples?: number;
    features?: number;
    classes?: number;
  };
  partition: { kind: 'natural' | 'iid' | 'dirichlet' | 'quantity'; sites?: number; alpha?: number };
  /** Share of each site's data kept as its own test split. */
  testFraction: number;
  model: { zoo: string; hidden?: number[] };
  strategies: { name: StrategyName; options?: StrategyOptions; label?: string }[];
  rounds: number;
  /** Local training; FedProx's μ comes from its strategy options. */
  fit: Omit<FitConfig, 'seed'>;
  fractionFit: number;
  minFitClients: number;
  fractionEvaluate: number;
  deadlineSeconds: number;
  security: 'plain' | 'secagg';
  secagg?: SecAggConfig;
  privacy?: PrivacyConfig;
  faults: {
    /** Probability that a site drops (its connection is cut) at each protocol step. */
    dropout: Partial<Record<FaultPoint, number>>;
    /** A seeded share of the sites answers each fit this many seconds late. */
    stragglers?: { fraction: number; delaySeconds: number };
    /** Restart the coordinator during this round (of each strategy's run). */
    coordinatorRestartAtRound?: number;
  };
  transport: 'ws' | 'memory';
  /** Worker threads hosting the sites. */
  workers: number;
  backend: 'cpu' | 'wasm';
  /** Baselines to train; `epochs` fixes their budget (default: rounds × the local epochs or steps). */
  baselines: { local: boolean; pooled: boolean; epochs?: number };
}

const FAULT_POINTS: FaultPoint[] = ['fit', 'fit_res', 'evaluate', 'secagg_roster', 'secagg_relay', 'secagg_unmask'];

export const SIMULATION_CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'data', 'model'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    seed: { type: 'integer', default: 1 },
    data: {
      type: 'object',
      additionalProperties: false,
      required: ['source'],
      properties: {
        source: { enum: ['heart-disease', 'medmnist', 'csv', 'synthetic-tabular', 'synthetic-images'] },
        path: { type: 'string' },
        labelColumn: { type: ['string', 'integer'] },
        binarizeLabel: { type: 'boolean' },
        examples: { type: 'integer', minimum: 2, default: 20000 },
        features: { type: 'integer', minimum: 1, default: 16 },
        classes: { type: 'integer', minimum: 2, default: 2 },
      },
    },
    partition: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: { kind: { enum: ['natural', 'iid', 'dirichlet', 'quantity'], default: 'iid' }, sites: { type: 'integer', minimum: 1, maximum: 100000 }, alpha: { type: 'number', exclusiveMinimum: 0 } },
    },
    testFraction: { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1, default: 0.2 },
    model: { type: 'object', additionalProperties: false, required: ['zoo'], properties: { zoo: { type: 'string' }, hidden: { type: 'array', items: { type: 'integer', minimum: 1 }, maxItems: 16 } } },
    strategies: {
      type: 'array',
      minItems: 1,
      default: [{ name: 'fedavg' }],
      items: { type: 'object', additionalProperties: false, required: ['name'], properties: { name: { enum: STRATEGY_NAMES }, options: STRATEGY_OPTIONS_SCHEMA, label: { type: 'string', minLength: 1 } } },
    },
    rounds: { type: 'integer', minimum: 1, maximum: 10000, default: 10 },
    fit: EXPERIMENT_FIT_SCHEMA,
    fractionFit: { type: 'number', exclusiveMinimum: 0, maximum: 1, default: 1 },
    minFitClients: { type: 'integer', minimum: 1, default: 1 },
    fractionEvaluate: { type: 'number', minimum: 0, maximum: 1, default: 1 },
    deadlineSeconds: { type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 120 },
    security: { enum: ['plain', 'secagg'], default: 'plain' },
    secagg: SECAGG_CONFIG_SCHEMA,
    privacy: PRIVACY_CONFIG_SCHEMA,
    faults: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        dropout: { type: 'object', additionalProperties: false, default: {}, properties: Object.fromEntries(FAULT_POINTS.map((p) => [p, { type: 'number', minimum: 0, maximum: 1 }])) },
        stragglers: { type: 'object', additionalProperties: false, required: ['fraction', 'delaySeconds'], properties: { fraction: { type: 'number', minimum: 0, maximum: 1 }, delaySeconds: { type: 'number', minimum: 0 } } },
        coordinatorRestartAtRound: { type: 'integer', minimum: 1 },
      },
    },
    transport: { enum: ['ws', 'memory'], default: 'ws' },
    workers: { type: 'integer', minimum: 1, maximum: 64 },
    backend: { enum: ['cpu', 'wasm'], default: 'cpu' },
    baselines: { type: 'object', additionalProperties: false, default: {}, properties: { local: { type: 'boolean', default: true }, pooled: { type: 'boolean', default: true }, epochs: { type: 'integer', minimum: 1, maximum: 100000 } } },
  },
} as const;

const validate = new Ajv({ useDefaults: true, allErrors: false, strict: false }).compile(SIMULATION_CONFIG_SCHEMA);

/** Validates (and fills defaults into) a parsed config; throws UsageError naming the field. */
export function parseSimulationConfig(json: unknown, source = 'simulation config'): SimulationConfig {
  const config = structuredClone(json);
  if (!validate(config)) {
    const e = validate.errors![0];
    const where = e.instancePath ? e.instancePath.slice(1).replaceAll('/', '.') : '(top level)';
    const extra = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : e.keyword === 'enum' ? ` (${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : '';
    throw new UsageError(`${source}: ${where} ${e.message}${extra}`);
  }
  const c = config as SimulationConfig;
  c.workers ??= Math.max(1, Math.min(availableParallelism(), 8));
  if (c.partition.kind === 'natural' && c.data.source !== 'heart-disease') throw new UsageError(`${source}: partition "natural" needs a data set with its own sites (heart-disease); use iid, dirichlet or quantity`);
  if (c.partition.kind !== 'natural' && c.partition.sites === undefined) throw new UsageError(`${source}: partition.sites is required for partition "${c.partition.kind}"`);
  if ((c.partition.kind === 'dirichlet' || c.partition.kind === 'quantity') && c.partition.alpha === undefined) throw new UsageError(`${source}: partition "${c.partition.kind}" needs partition.alpha`);
  if (!c.data.source.startsWith('synthetic-') && !c.data.path) throw new UsageError(`${source}: data.path is required for data source "${c.data.source}"`);
  for (const s of c.strategies) {
    // Fail before anything runs, not when the coordinator refuses the experiment half-way.
    const conflict = securityConflict(s.name, c.security);
    if (conflict) throw new UsageError(`${source}: ${conflict}`);
    try {
      createStrategy(s.name, s.options ?? {});
    } catch (err) {
      throw new UsageError(`${source}: ${(err as Error).message}`);
    }
  }
  const labels = c.strategies.map((s) => s.label ?? s.name);
  if (new Set(labels).size !== labels.length) throw new UsageError(`${source}: strategies need distinct labels (got ${labels.join(', ')}); add "label" to tell runs of the same strategy apart`);
  return c;
}
