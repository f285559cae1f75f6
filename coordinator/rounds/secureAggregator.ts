/**
 * An experiment's protection of updates on the coordinator (`security`: plain, SecAgg+ or CKKS)
 * behind one interface, so the round engine drives the same phases whichever it is: which
 * sites can take part, whether the coordinator holds the model in the clear, and the per-round
 * server half (fitAggregation.ts) that collects updates and yields their aggregate.
 */
import type { SiteCertificate } from '../../shared/secure/trust/certificates.js';
import type { ExperimentRecord } from '../store/storeSchema.js';
import type { FitAggregation, FitAggregationHooks } from './fitAggregation.js';
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import type { EncryptedAggregate } from './ckksAggregation.js';
import type { PrivacyLayer } from './privacyLayer.js';

/** What a protection needs to open one round's aggregation. */
export interface AggregationRound {
  exp: ExperimentRecord;
  round: number;
  /** The sampled sites. */
  sites: string[];
  /** Model parameters. */
  size: number;
  privacy: PrivacyLayer;
  /** Keep every update until the round closes (robust rules, deterministic order): plain only. */
  keepUpdates: boolean;
  /** A sampled site's admin certificate (SecAgg+ rosters carry them). */
  certificate(site: string): SiteCertificate;
  hooks: FitAggregationHooks;
}

export type RoundAggregation = FitAggregation<AggregatedFit | EncryptedAggregate>;

export interface SecureAggregator {
  readonly mode: 'plain' | 'secagg' | 'ckks';
  /** Whether the coordinator holds the model in the clear (it sends it in fit_ins and eval_ins). */
  readonly clearModel: boolean;
  /** Of the certified online sites, those that can take part in this experiment's rounds. */
  eligible(exp: ExperimentRecord, sites: string[]): string[];
  /** Fields added to `eval_ins`. */
  evalInsFields(exp: ExperimentRecord): { ckksKeySet?: string };
  /** One round's server half; throws, naming why, when the round cannot run with these parameters. */
  open(r: AggregationRound): Promise<RoundAggregation>;
}
