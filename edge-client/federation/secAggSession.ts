/**
 * The edge's side of one SecAgg+ round, wired to its connection: advertises keys as soon as
 * `fit_ins` arrives (so key exchange overlaps local training), answers the roster with sealed
 * shares (once the roster passes the site's checks), opens the relayed boxes, and — once
 * training is done and the relay is in — encodes, masks and signs the update; signs the survivor
 * set of the consistency round. Unmask requests are answered only with what the protocol
 * permits (see SecAggClient). A reconnection ends the session: masks cannot be resumed safely.
 */
import type { KeyObject } from 'node:crypto';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { distributedDiscreteGaussian, type PrivacyMechanism } from '../../shared/privacy/privacyMechanism.js';
import { DEFAULT_ROUNDING_BETA, encodeUpdate } from '../../shared/secure/secagg/fixedPoint.js';
import { SecAggClient } from '../../shared/secure/secagg/secaggClient.js';
import { SecAggProtocolError } from '../../shared/secure/secagg/secaggErrors.js';
import { checkNoWrap, quantLevels, type SecAggRoundParams, type SiteSecAggRules } from '../../shared/secure/secagg/secaggParams.js';
import type { FederationTrust } from '../../shared/secure/trust/federationTrust.js';

export class EdgeSecAggSession {
  private readonly client: SecAggClient;
  private readonly relayed: Promise<void>;
  private relayDone!: () => void;
  private relayFailed!: (err: Error) => void;

  constructor(
    site: string,
    m: MessageOf<'fit_ins'>,
    readonly params: SecAggRoundParams,
    identity: KeyObject,
    trust: FederationTrust,
    private readonly send: (message: Message) => Promise<void>,
    rules?: SiteSecAggRules,
  ) {
    this.client = new SecAggClient(site, { experiment: m.experiment, round: m.round }, params, identity, trust, rules);
    this.relayed = new Promise<void>((resolve, reject) => {
      this.relayDone = resolve;
      this.relayFailed = reject;
    });
    this.relayed.catch(() => {}); // observed by maskedResult
  }

  /** Phase 0: advertise this round's keys. */
  start(): Promise<void> {
    return this.send(this.client.keys());
  }

  /** Roster, relay, survivor-set and unmask messages. Throws SecAggProtocolError for one to refuse. */
  async onMessage(m: MessageOf<'secagg_roster' | 'secagg_relay' | 'secagg_consistency' | 'secagg_unmask'>): Promise<void> {
    try {
      if (m.type === 'secagg_roster') await this.send(await this.client.shares(m));
      else if (m.type === 'secagg_relay') {
        this.client.receive(m);
        this.relayDone();
      } else if (m.type === 'secagg_consistency') await this.send(this.client.consistency(m));
      else await this.send(this.client.unmask(m));
    } catch (err) {
      if (m.type === 'secagg_roster' || m.type === 'secagg_relay') this.relayFailed(err as Error);
      throw err;
    }
  }

  /** The round was cancelled or the connection lost: stop waiting. */
  cancel(reason: string): void {
    this.relayFailed(new SecAggProtocolError(reason));
  }

  /**
   * Encodes the (clipped, possibly noised) update with this site's bounded weight, waits for the
   * share relay, masks it and signs the result. Returns the fit_res header and payload.
   *
   * `noise` (distributed DP): the site adds discrete Gaussian noise of stddev totalStddev / √t
   * (value units; in quantisation steps after dividing by the step), t the threshold it checked
   * in the roster — any sum the coordinator can unmask holds at least t members of its group —
   * its own figure, never the one in the round parameters; refused if the sum could then wrap.
   * `beforeRelease` gets the mechanism exactly as run (to charge the ledger; it may throw to
   * stop the release) once t is known and before anything is encoded.
   */
  async maskedResult(
    values: Float32Array,
    numExamples: number,
    header: Omit<MessageOf<'fit_res'>, 'type' | 'signature'>,
    noise?: { totalStddev: number; clip: number; beforeRelease: (m: PrivacyMechanism) => void },
  ): Promise<{ message: MessageOf<'fit_res'>; payload: Uint8Array; clipped: number }> {
    await this.relayed; // (encoding after it keeps the event loop free for the key phases)
    const weight = Math.min(numExamples, this.params.maxWeight);
    const step = this.params.range / quantLevels(this.params.bits);
    const t = this.client.groupThreshold;
    const noiseStddev = noise && noise.totalStddev > 0 ? noise.totalStddev / Math.sqrt(t) / step : 0;
    if (noiseStddev > 0) checkNoWrap(this.client.participantCount, { bits: this.params.bits, maxWeight: this.params.maxWeight, noiseStddev });
    // Conditional randomised rounding (re-rounds until the rounded norm meets the bound the ledger charges).
    const rounding = noise ? { l2Clip: noise.clip, roundingBeta: DEFAULT_ROUNDING_BETA } : {};
    if (noise) noise.beforeRelease(distributedDiscreteGaussian({ clip: noise.clip, dimension: values.length, step, sigmaSteps: noiseStddev, minSummands: t, beta: DEFAULT_ROUNDING_BETA, maxWeight: this.params.maxWeight }));
    const { words, clipped } = encodeUpdate(values, weight, { bits: this.params.bits, range: this.params.range, noiseStddev, ...rounding });
    return { ...(await this.maskedWords(words, header)), clipped };
  }

  /** Masks and signs an already encoded update (consumed), once the relay is in. */
  async maskedWords(words: Uint32Array, header: Omit<MessageOf<'fit_res'>, 'type' | 'signature'>): Promise<{ message: MessageOf<'fit_res'>; payload: Uint8Array }> {
    await this.relayed;
    const masked = this.client.mask(words);
    const payload = new Uint8Array(masked.buffer, masked.byteOffset, masked.byteLength);
    const message: MessageOf<'fit_res'> = { type: 'fit_res', ...header };
    message.signature = this.client.signResult(message, payload);
    return { message, payload };
  }
}
