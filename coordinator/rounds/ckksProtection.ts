/**
 * `security: "ckks"`: updates arrive encrypted under the experiment's CKKS key set, which the
 * coordinator never holds. Only sites the admin granted that key can take part; the coordinator
 * has no plaintext model (after round 0), so fit_ins and eval_ins carry none.
 */
import { CKKS_DEFAULTS, ckksMaxWeight, type CkksRoundParams } from '../../shared/secure/ckks/ckksParams.js';
import { ckksContext } from '../../shared/secure/ckks/sealContext.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ExperimentRecord } from '../store/storeSchema.js';
import { CkksAggregation } from './ckksAggregation.js';
import { RoundError } from './roundError.js';
import type { AggregationRound, SecureAggregator } from './secureAggregator.js';

type Log = { warn(o: object, msg: string): void };

export class CkksProtection implements SecureAggregator {
  readonly mode = 'ckks' as const;
  readonly clearModel = false;

  constructor(
    private readonly store: CoordinatorStore,
    private readonly log: Log,
    /** Test instrumentation: sees every encrypted update the coordinator receives. */
    private readonly observer: () => ((site: string, payload: Uint8Array) => void) | undefined,
  ) {}

  /** Sites that hold a wrapped copy of the experiment's key (the others cannot take part). */
  eligible(exp: ExperimentRecord, sites: string[]): string[] {
    const set = this.store.data.ckksKeySets?.find((k) => k.id === exp.config.ckks?.keySet);
    const granted = new Set(set?.sites.map((s) => s.site) ?? []);
    const missing = sites.filter((s) => !granted.has(s));
    if (missing.length > 0) this.log.warn({ experiment: exp.id, keySet: set?.id, sites: missing }, 'online sites without a key for this CKKS experiment are left out ("fedmed federation keys grant")');
    return sites.filter((s) => granted.has(s));
  }

  evalInsFields(exp: ExperimentRecord) {
    return { ckksKeySet: exp.config.ckks!.keySet! };
  }

  async open(r: AggregationRound): Promise<CkksAggregation> {
    const range = r.exp.config.ckks?.range ?? CKKS_DEFAULTS.range;
    const maxWeight = r.privacy.equalWeights ? 1 : ckksMaxWeight(r.sites.length, range);
    if (maxWeight < 1) throw new RoundError(`CKKS with ${r.sites.length} sites and range ${range} leaves no room in the last level for weights; lower ckks.range`);
    const params: CkksRoundParams = { mode: 'ckks', keySet: r.exp.config.ckks!.keySet!, range, maxWeight };
    return new CkksAggregation(await ckksContext(), params, r.size, this.observer());
  }
}
