/**
 * The aggregate phase's last step: the next model version from a round's aggregate. A sum in
 * the clear goes through the privacy layer into the strategy (FedAvg or a server optimiser,
 * whose state is saved with the version); under CKKS the encrypted aggregate is itself the
 * version, which every site applies to its own copy. Nothing is announced here: the engine
 * records the version once it is stored.
 */
import type { FederatedStrategy } from '../../shared/aggregation/federatedStrategy.js';
import { encodeRuleState } from '../../shared/aggregation/ruleStateFile.js';
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import { encryptedVersionId, versionHashes } from '../../shared/model/modelHash.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import type { ExperimentRecord, VersionRecord } from '../store/storeSchema.js';
import type { EncryptedAggregate } from './ckksAggregation.js';
import type { PrivacyLayer } from './privacyLayer.js';

export interface NextVersion {
  version: Pick<VersionRecord, 'id' | 'paramsSha256' | 'encrypted'>;
  /** The new parameters, when the coordinator holds them in the clear. */
  params: Float32Array | null;
}

/** Stores the next version made from `aggregate`; a strategy's FedmedError (it cannot aggregate) propagates. */
export function nextVersion(o: { exp: ExperimentRecord; round: number; store: CoordinatorStore; strategy: FederatedStrategy; privacy: PrivacyLayer; current: Float32Array | null; aggregate: AggregatedFit | EncryptedAggregate }): NextVersion {
  const { exp, store, aggregate } = o;
  if ('bytes' in aggregate) {
    const id = encryptedVersionId(exp.spec, exp.currentVersion, aggregate.sha256);
    store.saveEncryptedVersion(id, aggregate.bytes);
    return { version: { id, paramsSha256: null, encrypted: { sha256: aggregate.sha256, bytes: aggregate.bytes.byteLength } }, params: null };
  }
  const params = o.privacy.aggregateFit(o.strategy, o.round, o.current!, aggregate);
  const version = versionHashes(exp.spec, params);
  store.saveParams(version.id, exp.spec, params, version.paramsSha256!);
  const ruleState = o.strategy.rule.exportState();
  if (Object.keys(ruleState).length > 0) store.saveStrategyState(exp.id, version.id, encodeRuleState(ruleState));
  return { version, params };
}
