/**
 * `security: "secagg"`: SecAgg+ with the experiment's parameters. Each round gets a fresh
 * session and the largest update weight its fixed-point range can sum without wrapping, with
 * room for the sites' distributed-DP noise (added as integers, in quantisation steps).
 */
import { maxWeightFor, quantLevels, SECAGG_DEFAULTS, type SecAggRoundParams } from '../../shared/secure/secagg/secaggParams.js';
import { newSession } from '../../shared/secure/secagg/secaggServer.js';
import type { ExperimentRecord } from '../store/storeSchema.js';
import { RoundError } from './roundError.js';
import { SecAggDriver } from './secAggDriver.js';
import type { AggregationRound, SecureAggregator } from './secureAggregator.js';

export class SecAggProtection implements SecureAggregator {
  readonly mode = 'secagg' as const;
  readonly clearModel = true;

  eligible(_exp: ExperimentRecord, sites: string[]): string[] {
    return sites;
  }

  evalInsFields() {
    return {};
  }

  open(r: AggregationRound): Promise<SecAggDriver> {
    const sa = { ...SECAGG_DEFAULTS, ...r.exp.config.secagg };
    const n = r.sites.length;
    const noiseStddev = r.privacy.distributedNoiseStddev / (sa.range / quantLevels(sa.bits));
    const maxWeight = r.privacy.equalWeights ? 1 : maxWeightFor(n, sa.bits, noiseStddev * Math.sqrt(n));
    if (maxWeight < 1) throw new RoundError(`SecAgg+ with ${n} sites at ${sa.bits} bits leaves no room for weights or noise without wrapping; lower secagg.bits`);
    const params: SecAggRoundParams = { mode: 'secagg', session: newSession(), bits: sa.bits, range: sa.range, maxWeight, noiseStddev };
    return Promise.resolve(
      new SecAggDriver({
        experiment: r.exp.id,
        round: r.round,
        sites: r.sites,
        params,
        config: sa,
        certificate: r.certificate,
        size: r.size,
        phaseTimeoutMs: Math.min(sa.phaseTimeoutSeconds, r.exp.config.deadlineSeconds) * 1000,
        hooks: r.hooks,
      }),
    );
  }
}
