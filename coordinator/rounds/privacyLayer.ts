/**
 * The coordinator's differential-privacy layer around one round: privacy wraps the strategy, it
 * is not a branch of the round loop. It fixes what `fit_ins` says about DP (clip C, noise
 * multiplier z, each site's share of the noise, the sampling rate), weighs every update equally
 * under DP (a site's influence is then bounded by C, not by its example count), adds the
 * central-mode noise to the sum before the strategy sees it, charges the federation's ledger once
 * updates (or their secure sum) were released, and moves the clip norm under adaptive clipping.
 * Without DP every step is a no-op. Sites compute and add their own noise (edge-client/): what
 * this layer sends is what they check it against, never what they trust.
 */
import type { AggregatedFit } from '../../shared/aggregation/strategy.js';
import type { FederatedStrategy } from '../../shared/aggregation/federatedStrategy.js';
import { defaultCountStddev, nextClip, updateNoiseMultiplier } from '../../shared/privacy/adaptiveClipping.js';
import { fillGaussian } from '../../shared/privacy/gaussianNoise.js';
import { siteNoiseShare, siteNoiseStddev, type RoundPrivacy } from '../../shared/privacy/privacyConfig.js';
import { layoutOf } from '../../shared/model/parameterLayout.js';
import { DEFAULT_ROUNDING_BETA } from '../../shared/secure/secagg/fixedPoint.js';
import { SECAGG_DEFAULTS } from '../../shared/secure/secagg/secaggParams.js';
import { exampleWeight } from '../experimentConfig.js';
import type { ExperimentRecord, RoundRecord } from '../store/storeSchema.js';
import type { CoordinatorStore } from '../store/coordinatorStore.js';
import { experimentPrivacy } from './privacyLedger.js';

export class PrivacyLayer {
  /** Adaptive clipping: sum of the sites' noised (b − 1/2) reports. */
  private clipIndicators = 0;

  private constructor(
    private readonly exp: ExperimentRecord,
    private readonly record: RoundRecord,
    /** What fit_ins carries (undefined: the experiment has no DP). */
    private readonly round: RoundPrivacy | undefined,
    /** The update noise multiplier z_Δ (z minus what adaptive clipping's count takes). */
    private readonly deltaZ: number,
    /** Adaptive clipping: stddev of the noise on the count of unclipped updates. */
    private readonly countStddev: number,
  ) {}

  /**
   * The layer for a round that sampled `sampled` of `available` sites; fills the round record's
   * DP part. With adaptive clipping the count of unclipped updates takes part of the noise
   * budget: the update noise uses z_Δ, the accounting keeps z.
   */
  static forRound(exp: ExperimentRecord, record: RoundRecord, sampled: number, available: number): PrivacyLayer {
    const dp = exp.config.privacy;
    if (!dp) return new PrivacyLayer(exp, record, undefined, 0, 0);
    const clip = exp.clip ?? dp.clip;
    const countStddev = dp.adaptiveClipping ? (dp.adaptiveClipping.countStddev ?? defaultCountStddev(sampled, dp.noiseMultiplier!)) : 0;
    const deltaZ = dp.adaptiveClipping ? updateNoiseMultiplier(dp.noiseMultiplier!, countStddev) : dp.noiseMultiplier!;
    const round: RoundPrivacy = {
      mode: dp.mode,
      clip,
      noiseMultiplier: dp.noiseMultiplier!,
      noiseStddev: siteNoiseStddev({ ...dp, clip }, deltaZ, sampled),
      samplingRate: sampled / available,
      delta: dp.delta,
      // A site's bit leaves unmasked: under local and distributed DP each carries at least z/2 (what sites add; edge-client/policy/siteRules.ts).
      ...(dp.adaptiveClipping ? { countNoiseStddev: dp.mode === 'central' ? siteNoiseShare(dp, countStddev, sampled) : Math.max(siteNoiseShare(dp, countStddev, sampled), dp.noiseMultiplier! / 2) } : {}),
    };
    // What the federation ledger accounts (rounds/privacyLedger.ts): the update noise as sites and
    // the coordinator actually add it, and the clip bits' noise.
    record.privacy = {
      mode: round.mode,
      noiseMultiplier: round.noiseMultiplier,
      samplingRate: round.samplingRate,
      clip: round.clip,
      delta: round.delta,
      charged: false,
      updateNoiseMultiplier: dp.mode === 'central' ? deltaZ : round.noiseMultiplier,
      ...(dp.adaptiveClipping ? { countStddev, countNoiseStddev: round.countNoiseStddev } : {}),
    };
    return new PrivacyLayer(exp, record, round, deltaZ, countStddev);
  }

  /** Under DP every update weighs 1 (its influence bounded by the clip norm), else its example count. */
  get equalWeights(): boolean {
    return this.round !== undefined;
  }

  /**
   * The weight of an update that claims `numExamples`: 1 under DP, else the count capped at the
   * experiment's maxExampleWeight (a site cannot outweigh the others by claiming more examples).
   */
  weight(numExamples: number): number {
    return this.equalWeights ? 1 : exampleWeight(this.exp.config, numExamples);
  }

  /** The DP fields of `fit_ins`. */
  fitInsFields(): { privacy?: RoundPrivacy } {
    return this.round ? { privacy: this.round } : {};
  }

  /**
   * Distributed DP: the stddev of the noise share each site adds to its update before masking
   * (a secure aggregator leaves room for it in its integer range); 0 otherwise.
   */
  get distributedNoiseStddev(): number {
    return this.round?.mode === 'distributed' ? this.round.noiseStddev : 0;
  }

  /**
   * Distributed DP under SecAgg+: records what the distributed discrete Gaussian bound needs once
   * the round's threshold is known (sites weigh 1 and use conditional rounding at DEFAULT_ROUNDING_BETA).
   */
  recordSecureSum(described: Record<string, unknown>): void {
    const p = this.record.privacy;
    if (!p || this.round?.mode !== 'distributed' || typeof described.threshold !== 'number' || described.threshold < 1) return;
    const sa = { ...SECAGG_DEFAULTS, ...this.exp.config.secagg };
    p.ddg = { dimension: layoutOf(this.exp.spec).size, bits: sa.bits, range: sa.range, threshold: described.threshold, maxWeight: 1, beta: DEFAULT_ROUNDING_BETA };
  }

  /** A site's adaptive-clipping report, from an update that was accepted. */
  addClipIndicator(value: number | undefined): void {
    this.clipIndicators += value ?? 0;
  }

  /**
   * Updates (or their secure sum) were released to the coordinator: the round counts against the
   * experiment's budget, whether or not it goes on to publish. Charging twice is charging once.
   */
  async charge(store: Pick<CoordinatorStore, 'chargedRounds' | 'writeHistory'>): Promise<void> {
    const p = this.record.privacy;
    if (!p || p.charged) return;
    p.charged = true;
    const earlier = (await store.chargedRounds(this.exp.id)).filter((r) => r.round !== this.record.round);
    p.epsilon = experimentPrivacy(this.exp, [...earlier, this.record]).epsilon ?? undefined;
    // Durable now: a coordinator killed later in the round still counts it (recovery aborts it, charged).
    await store.writeHistory({ rounds: [this.record] });
  }

  /** Adaptive clipping: records the noised fraction of unclipped updates and the next round's clip. */
  adaptClip(contributors: number): void {
    const adaptive = this.exp.config.privacy?.adaptiveClipping;
    const p = this.record.privacy;
    if (!adaptive || !p || !this.round) return;
    let indicators = this.clipIndicators;
    if (this.round.mode === 'central') indicators += gaussian(this.countStddev);
    const unclipped = Math.min(1, Math.max(0, indicators / contributors + 0.5)); // sites report b − 1/2
    p.unclippedFraction = unclipped;
    p.nextClip = nextClip(this.round.clip, unclipped, adaptive);
  }

  /** The round published its version: under adaptive clipping the next round uses the new clip. */
  published(): void {
    const next = this.record.privacy?.nextClip;
    if (next !== undefined) this.exp.clip = next;
  }

  /** The strategy's aggregateFit behind the layer: in central mode the noise joins the sum first. */
  aggregateFit(strategy: FederatedStrategy, round: number, current: Float32Array, aggregate: AggregatedFit): Float32Array {
    if (this.round?.mode === 'central') addNoise(aggregate.weightedDeltaSum, this.deltaZ * this.round.clip);
    return strategy.aggregateFit(round, current, aggregate);
  }
}

/** One N(0, stddev²) sample from the CSPRNG. */
function gaussian(stddev: number): number {
  const x = new Float64Array(1);
  fillGaussian(x, stddev);
  return x[0];
}

/** Central DP: N(0, stddev²) added to the sum of the clipped updates, from the CSPRNG. */
function addNoise(sum: Float64Array, stddev: number): void {
  const noise = new Float64Array(sum.length);
  fillGaussian(noise, stddev);
  for (let i = 0; i < sum.length; i++) sum[i] += noise[i];
}
