/**
 * The strategy catalogue: `createStrategy(name, options)` builds an aggregation rule by name,
 * for the library API (`import { createStrategy } from 'fedmed'`) and for experiment configs
 * (`"strategy": "fedyogi", "strategyOptions": {"eta": 0.01}`). Unknown names and options are
 * errors that say what is accepted.
 */
import { AggregationError, type AggregationRule } from './aggregationRule.js';
import { FedAvg, FedProx } from './fedAvg.js';
import { FedAvgM } from './fedAvgM.js';
import { FedOpt } from './fedOpt.js';
import { Bulyan, FedMedian, FedTrimmedAvg, Krum } from './robustRules.js';

/** Options each strategy accepts (JSON-schema property definitions). */
const OPTION_SCHEMAS = {
  fedavg: {},
  fedprox: { proximalMu: { type: 'number', minimum: 0 } },
  fedavgm: { serverLearningRate: { type: 'number', exclusiveMinimum: 0 }, serverMomentum: { type: 'number', minimum: 0, exclusiveMaximum: 1 } },
  fedadam: { eta: { type: 'number', exclusiveMinimum: 0 }, beta1: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, beta2: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, tau: { type: 'number', exclusiveMinimum: 0 }, biasCorrection: { type: 'boolean' } },
  fedyogi: { eta: { type: 'number', exclusiveMinimum: 0 }, beta1: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, beta2: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, tau: { type: 'number', exclusiveMinimum: 0 } },
  fedadagrad: { eta: { type: 'number', exclusiveMinimum: 0 }, beta1: { type: 'number', minimum: 0, exclusiveMaximum: 1 }, tau: { type: 'number', exclusiveMinimum: 0 } },
  fedmedian: {},
  fedtrimmedavg: { beta: { type: 'number', minimum: 0, exclusiveMaximum: 0.5 } },
  krum: { numMaliciousClients: { type: 'integer', minimum: 0 }, numClientsToKeep: { type: 'integer', minimum: 0 } },
  bulyan: { numMaliciousClients: { type: 'integer', minimum: 0 } },
} as const;

export type StrategyName = keyof typeof OPTION_SCHEMAS;
export const STRATEGY_NAMES = Object.keys(OPTION_SCHEMAS) as StrategyName[];
/** Rules that need every site's update: refused with secure aggregation. */
export const ROBUST_STRATEGIES: readonly StrategyName[] = ['fedmedian', 'fedtrimmedavg', 'krum', 'bulyan'];

/** JSON schema of `strategyOptions` (the union; createStrategy checks the per-strategy set). */
export const STRATEGY_OPTIONS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: Object.assign({}, ...Object.values(OPTION_SCHEMAS)) as Record<string, object>,
} as const;

export type StrategyOptions = Record<string, number | boolean | undefined>;

export function createStrategy(name: string, options: StrategyOptions = {}): AggregationRule {
  if (!(STRATEGY_NAMES as string[]).includes(name)) throw new AggregationError(`unknown strategy "${name}"; choose one of ${STRATEGY_NAMES.join(', ')}`);
  const strategy = name as StrategyName;
  const allowed = Object.keys(OPTION_SCHEMAS[strategy]);
  for (const key of Object.keys(options)) {
    if (options[key] !== undefined && !allowed.includes(key)) throw new AggregationError(`strategy ${name} has no option "${key}"${allowed.length ? ` (it accepts ${allowed.join(', ')})` : ' (it takes no options)'}`);
  }
  const o = options as Record<string, never>;
  switch (strategy) {
    case 'fedavg':
      return new FedAvg();
    case 'fedprox':
      if (o.proximalMu === undefined) throw new AggregationError('strategy fedprox needs the option proximalMu (μ of the proximal term, e.g. 0.01)');
      return new FedProx({ proximalMu: options.proximalMu as number });
    case 'fedavgm':
      return new FedAvgM(o);
    case 'fedadam':
    case 'fedyogi':
    case 'fedadagrad':
      return new FedOpt(strategy, o);
    case 'fedmedian':
      return new FedMedian();
    case 'fedtrimmedavg':
      return new FedTrimmedAvg(o);
    case 'krum':
      return new Krum(o);
    case 'bulyan':
      return new Bulyan(o);
  }
}

/** Why a strategy cannot run with a security mode, or null. */
export function securityConflict(name: string, security: string): string | null {
  if (security === 'plain' || !(ROBUST_STRATEGIES as readonly string[]).includes(name)) return null;
  return `strategy ${name} needs each site's individual update, which security "${security}" hides from the coordinator by design; use a mean-based strategy (fedavg, fedavgm, fedadam, fedyogi, fedadagrad, fedprox), or security "plain" with a robust strategy, or bound each update's influence with "normBound" (security "plain": the coordinator clips every update to that L2 norm) or privacy.clip (any security: each site clips its own update)`;
}
