/**
 * The federation's privacy ledger per experiment: the RDP accountant composed over every round
 * in which updates were released (completed rounds, and failed ones that received updates),
 * each with its own sampling rate and noise multiplier (subsampling amplification applies here:
 * an outside observer does not know which sites were sampled). Sites keep their own, more
 * conservative ledger (edge-client/federation/privacyLedger.ts).
 */
import { RdpAccountant } from '../../shared/privacy/rdpAccountant.js';
import type { ExperimentRecord, RoundRecord } from '../store/storeSchema.js';

export interface ExperimentPrivacy {
  enabled: boolean;
  mode: string | null;
  delta: number | null;
  noiseMultiplier: number | null;
  clip: number | null;
  /** ε spent so far at δ (0 before any round; null without DP). */
  epsilon: number | null;
  rounds: { round: number; samplingRate: number; epsilon: number }[];
}

export function experimentPrivacy(exp: ExperimentRecord, allRounds: RoundRecord[]): ExperimentPrivacy {
  const p = exp.config.privacy;
  if (!p) return { enabled: false, mode: null, delta: null, noiseMultiplier: null, clip: null, epsilon: null, rounds: [] };
  const acc = new RdpAccountant();
  const rounds: ExperimentPrivacy['rounds'] = [];
  for (const r of allRounds) {
    if (r.experiment !== exp.id || !r.privacy?.charged) continue;
    acc.compose(r.privacy.samplingRate, r.privacy.noiseMultiplier, 1);
    rounds.push({ round: r.round, samplingRate: r.privacy.samplingRate, epsilon: acc.epsilon(p.delta).epsilon });
  }
  return { enabled: true, mode: p.mode, delta: p.delta, noiseMultiplier: p.noiseMultiplier ?? null, clip: p.clip, epsilon: rounds.length ? rounds[rounds.length - 1].epsilon : 0, rounds };
}
