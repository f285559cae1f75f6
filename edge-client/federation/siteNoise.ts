/**
 * The noise this site adds to what it releases, by its own rules from the experiment's noise
 * multiplier z and clip norm C — never a noise level the coordinator states (a coordinator that
 * says "z = 1000, stddev 0" would otherwise get the exact update and a site charged almost
 * nothing). What the site charges its ledger is the mechanism it actually runs:
 *
 *   local        N(0, (zC)²) on its own clipped update: the update alone is (z)-DP
 *   distributed  only under SecAgg+: discrete Gaussian noise of stddev zC/√t in integers, where t
 *                is the reconstruction threshold the site checked in the roster — any sum the
 *                coordinator can unmask holds at least t members of its group (the consistency
 *                round), so every sum it sees carries at least zC of noise. Without SecAgg+
 *                (plain, or CKKS, whose cohort the site cannot verify) the coordinator could
 *                see this update with only a share of the noise: refused
 *   central      the coordinator adds the noise: refused by a site with a privacy budget (the
 *                coordinator would see its update un-noised); otherwise released unnoised and
 *                not charged (the site ran no mechanism)
 */
import type { MessageOf } from '../../shared/protocol/messages.js';

export type SiteNoise =
  | { kind: 'none' }
  /** Continuous Gaussian on the clipped float update. */
  | { kind: 'gaussian'; stddev: number }
  /** Discrete Gaussian in SecAgg+'s integer domain: total stddev zC, split over the verified threshold. */
  | { kind: 'secagg-integer'; totalStddev: number };

export interface SiteNoiseRules {
  /** The site has a privacy budget (it refuses what it cannot charge truthfully). */
  hasBudget: boolean;
  /** Smallest noise multiplier this site accepts (0: any). */
  minNoiseMultiplier: number;
}

/** The noise for this fit_ins, or the reason this site will not release under it. */
export function siteNoise(m: MessageOf<'fit_ins'>, rules: SiteNoiseRules): { noise: SiteNoise; charge: boolean } | { refusal: string } {
  const p = m.privacy;
  if (!p) return { noise: { kind: 'none' }, charge: false };
  if (p.noiseMultiplier < rules.minNoiseMultiplier) return { refusal: `noise multiplier ${p.noiseMultiplier} is below this site's minimum ${rules.minNoiseMultiplier}` };
  const full = p.noiseMultiplier * p.clip;
  switch (p.mode) {
    case 'local':
      return { noise: { kind: 'gaussian', stddev: full }, charge: true };
    case 'distributed':
      if (!m.security) return { refusal: `distributed DP needs SecAgg+: under ${m.ckks ? 'CKKS this site cannot verify how many updates the noise is shared with' : 'plain security the coordinator sees this update with only its share of the noise'}; use mode "local", or security "secagg"` };
      return { noise: { kind: 'secagg-integer', totalStddev: full }, charge: true };
    case 'central':
      if (rules.hasBudget) return { refusal: 'privacy mode "central" leaves the noise to the coordinator, which would see this site\'s update un-noised; this site has a privacy budget and releases only noise it adds itself' };
      return { noise: { kind: 'none' }, charge: false };
  }
}
