/**
 * Each experiment's strategy (which sites, what they train, how updates combine), made once per
 * experiment: server optimisers keep state (moments) across rounds. After a restart a stateful
 * rule resumes from the state saved with the current version, or starts fresh and says so.
 */
import { createStrategy } from '../../shared/aggregation/createStrategy.js';
import { FederatedStrategy } from '../../shared/aggregation/federatedStrategy.js';
import { decodeRuleState } from '../../shared/aggregation/ruleStateFile.js';
import type { ExperimentConfig } from '../experimentConfig.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ExperimentRecord } from '../store/storeSchema.js';

type Log = { warn(o: object, msg: string): void };

export function strategyFor(config: ExperimentConfig): FederatedStrategy {
  return new FederatedStrategy(
    {
      fractionFit: config.fractionFit,
      minFitClients: config.minFitClients,
      fractionEvaluate: config.fractionEvaluate,
      minEvaluateClients: config.minEvaluateClients,
      fit: config.fit,
      seed: config.seed,
    },
    createStrategy(config.strategy ?? 'fedavg', config.strategyOptions ?? {}),
  );
}

export class ExperimentStrategies {
  private readonly strategies = new Map<string, FederatedStrategy>();

  constructor(
    private readonly store: CoordinatorStore,
    private readonly log: Log,
  ) {}

  of(exp: ExperimentRecord): FederatedStrategy {
    let s = this.strategies.get(exp.id);
    if (s) return s;
    s = strategyFor(exp.config);
    if (exp.roundsCompleted > 0) {
      const saved = this.store.loadStrategyState(exp.id, exp.currentVersion);
      if (saved) s.rule.importState(decodeRuleState(saved));
      else if (['fedavgm', 'fedadam', 'fedyogi', 'fedadagrad'].includes(s.name)) {
        this.log.warn({ experiment: exp.id, strategy: s.name }, 'no saved optimiser state for the current version; the server optimiser starts from zero moments');
      }
    }
    this.strategies.set(exp.id, s);
    return s;
  }
}
