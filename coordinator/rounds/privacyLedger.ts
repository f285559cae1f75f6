/**
 * The federation's privacy ledger per experiment: the RDP of the mechanisms released in every
 * round that released updates (completed rounds, and failed ones that received updates),
 * composed and converted to (ε, δ).
 *
 * No subsampling amplification: the coordinator picks a round's sites by a fixed-size shuffle
 * seeded by the experiment's public seed and publishes who took part, so nothing about a site's
 * participation is hidden — every charged round counts at q = 1, as the sites count it
 * (edge-client/federation/privacyLedger.ts). The mechanisms charged per round, by mode:
 *
 *   local        each site's update carries N(0, (zC)²) (siteNoise.ts): Gaussian z; the
 *                adaptive-clipping bit of each site (seen individually) with the noise it adds
 *   central      the coordinator's N(0, (z_Δ C)²) on the sum (z_Δ = z without adaptive clipping)
 *                and σ_b on the sum of the bits: together exactly Gaussian z
 *   distributed  SecAgg+: the distributed discrete Gaussian (ddgAccountant.ts) with the round's
 *                quantisation, the model size, t = the reconstruction threshold and the sites'
 *                σ = zC/√t/γ per value; the bits travel in the clear, each with one site's share
 *
 * The round record's `privacy` part may carry what the bound needs (storeSchema.ts); older
 * records are completed from the experiment's configuration.
 */
import { defaultCountStddev, updateNoiseMultiplier } from '../../shared/privacy/adaptiveClipping.js';
import { siteNoiseShare } from '../../shared/privacy/privacyConfig.js';
import { clipBitMechanism, composeMechanisms, distributedDiscreteGaussian, type PrivacyMechanism } from '../../shared/privacy/privacyMechanism.js';
import { RdpAccountant } from '../../shared/privacy/rdpAccountant.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { activeThreshold, MIN_HOLDERS, quantStep, SECAGG_DEFAULTS } from '../../shared/secure/secagg/secaggParams.js';
import type { ExperimentRecord, RoundRecord } from '../store/storeSchema.js';

export type AccountedMechanism = PrivacyMechanism['kind'];

export interface PrivacyAccounting {
  /** How sites are sampled: a fixed-size shuffle by the public seed, the sampled sites published. */
  sampling: 'fixed-size, public';
  /** Subsampling amplification is never claimed: every charged round counts at q = 1. */
  amplification: false;
  /** The mechanism of the update release. */
  mechanism: AccountedMechanism;
  /** Adaptive clipping: each round also releases the noised clip bits (charged as a Gaussian). */
  clipBits: boolean;
  composition: 'RDP';
}

export interface ExperimentPrivacy {
  enabled: boolean;
  mode: string | null;
  delta: number | null;
  noiseMultiplier: number | null;
  clip: number | null;
  /** ε spent so far at δ (0 before any round; null without DP, or when a round cannot be accounted). */
  epsilon: number | null;
  accounting: PrivacyAccounting | null;
  /** Why ε is null although DP is on (a round whose mechanism is outside the bounds' domain). */
  problem?: string;
  /**
   * Per charged round: ε so far and the mechanisms charged. `samplingRate` (sites asked / sites
   * available) is informational: it is not an amplification factor (see `accounting`).
   */
  rounds: { round: number; samplingRate: number; epsilon: number | null; mechanisms: PrivacyMechanism[] }[];
}

export function experimentPrivacy(exp: ExperimentRecord, allRounds: RoundRecord[]): ExperimentPrivacy {
  const p = exp.config.privacy;
  if (!p) return { enabled: false, mode: null, delta: null, noiseMultiplier: null, clip: null, epsilon: null, accounting: null, rounds: [] };
  const accounting: PrivacyAccounting = { sampling: 'fixed-size, public', amplification: false, mechanism: p.mode === 'distributed' ? 'distributed-discrete-gaussian' : 'gaussian', clipBits: p.adaptiveClipping !== undefined, composition: 'RDP' };
  const acc = new RdpAccountant();
  const rounds: ExperimentPrivacy['rounds'] = [];
  let problem: string | undefined;
  for (const r of allRounds) {
    if (r.experiment !== exp.id || !r.privacy?.charged) continue;
    let mechanisms: PrivacyMechanism[] = [];
    if (problem === undefined) {
      try {
        mechanisms = roundMechanisms(exp, r);
        composeMechanisms(acc, mechanisms);
      } catch (err) {
        problem = `round ${r.round}: ${(err as Error).message}`;
      }
    }
    rounds.push({ round: r.round, samplingRate: r.privacy.samplingRate, epsilon: problem === undefined ? acc.epsilon(p.delta).epsilon : null, mechanisms });
  }
  const epsilon = problem !== undefined ? null : rounds.length ? rounds[rounds.length - 1].epsilon : 0;
  return { enabled: true, mode: p.mode, delta: p.delta, noiseMultiplier: p.noiseMultiplier ?? null, clip: p.clip, epsilon, accounting, ...(problem !== undefined ? { problem } : {}), rounds };
}

/** The mechanisms one charged round released (see the header). Throws PrivacyParameterError. */
export function roundMechanisms(exp: ExperimentRecord, r: RoundRecord): PrivacyMechanism[] {
  const dp = exp.config.privacy;
  const rp = r.privacy;
  if (!dp || !rp) return [];
  const z = rp.noiseMultiplier;
  const clip = rp.clip;
  const sampled = r.sites.filter((s) => s.phase === 'fit').length;
  const countStddev = rp.countStddev ?? (dp.adaptiveClipping ? (dp.adaptiveClipping.countStddev ?? defaultCountStddev(sampled, z)) : undefined);
  const out: PrivacyMechanism[] = [];
  switch (rp.mode) {
    case 'central': {
      const zUpdate = rp.updateNoiseMultiplier ?? (countStddev !== undefined ? updateNoiseMultiplier(z, countStddev) : z);
      out.push({ kind: 'gaussian', noiseMultiplier: zUpdate });
      if (countStddev !== undefined) out.push(clipBitMechanism(countStddev));
      break;
    }
    case 'local':
      out.push({ kind: 'gaussian', noiseMultiplier: rp.updateNoiseMultiplier ?? z });
      if (countStddev !== undefined) out.push(clipBitMechanism(rp.countNoiseStddev ?? countStddev));
      break;
    case 'distributed': {
      const sa = { ...SECAGG_DEFAULTS, ...exp.config.secagg };
      const recorded = rp.ddg;
      const threshold = recorded?.threshold ?? securityThreshold(r) ?? exp.config.secagg?.threshold ?? activeThreshold(MIN_HOLDERS);
      const bits = recorded?.bits ?? sa.bits;
      const range = recorded?.range ?? sa.range;
      const step = quantStep(bits, range);
      out.push(
        distributedDiscreteGaussian({
          clip,
          dimension: recorded?.dimension ?? layoutOf(exp.spec).size,
          step,
          // What every site adds (siteNoise.ts, secAggSession.ts): zC/√t in value units.
          sigmaSteps: (rp.updateNoiseMultiplier ?? z) * clip / Math.sqrt(threshold) / step,
          minSummands: threshold,
          beta: recorded?.beta ?? 0,
          maxWeight: recorded?.maxWeight ?? 1,
        }),
      );
      // The bits are not under the masks: the coordinator sees each with one site's share.
      if (countStddev !== undefined) out.push(clipBitMechanism(rp.countNoiseStddev ?? siteNoiseShare(dp, countStddev, Math.max(1, sampled))));
      break;
    }
    default:
      out.push({ kind: 'gaussian', noiseMultiplier: z });
  }
  return out;
}

function securityThreshold(r: RoundRecord): number | undefined {
  const t = r.security?.threshold;
  return typeof t === 'number' && Number.isInteger(t) && t >= 1 ? t : undefined;
}
