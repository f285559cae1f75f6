/**
 * The coordinator half of a CKKS round: each site's `fit_res` carries its encrypted update,
 * which is checked and added to the running ciphertext sum as it arrives; after the fit phase
 * the encrypted aggregate is the new version. The coordinator holds no key: it never sees an
 * update, the aggregate, or the model.
 */
import { createHash } from 'node:crypto';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';
import { CiphertextSum } from '../../shared/secure/ckks/ciphertextSum.js';
import type { CkksRoundParams } from '../../shared/secure/ckks/ckksParams.js';
import type { CkksContext } from '../../shared/secure/ckks/sealContext.js';
import type { FitAggregation } from './fitAggregation.js';
import { CloseCode, ProtocolError } from '../../shared/protocol/protocolError.js';
import { CkksError } from '../../shared/secure/ckks/ckksErrors.js';

export interface EncryptedAggregate {
  /** The bundle of summed ciphertexts: [sum w_i delta_i, sum w_i]. */
  bytes: Uint8Array;
  sha256: string;
  sites: number;
}

export class CkksAggregation implements FitAggregation<EncryptedAggregate> {
  readonly security = 'ckks' as const;
  readonly revealsUpdates = false;
  private readonly sum: CiphertextSum;
  private addMs = 0;

  constructor(
    ctx: CkksContext,
    readonly params: CkksRoundParams,
    /** Model parameters (the vector carries one more value: the weight). */
    size: number,
    /** Test instrumentation: sees every payload the coordinator receives. */
    private readonly observe?: (site: string, payload: Uint8Array) => void,
  ) {
    this.sum = new CiphertextSum(ctx, size + 1);
  }

  fitInsFields() {
    return { ckks: this.params };
  }

  addResult(site: string, _m: MessageOf<'fit_res'>, payload: Uint8Array): void {
    this.observe?.(site, payload);
    const t = performance.now();
    try {
      this.sum.add(payload, site);
    } catch (err) {
      // A malformed ciphertext is the site's misbehaviour: its connection is closed.
      throw err instanceof CkksError ? new ProtocolError(CloseCode.PROTOCOL_ERROR, err.message) : err;
    }
    this.addMs += performance.now() - t;
  }

  onProtocolMessage(_site: string, m: Message): void {
    throw new Error(`${m.type} in a CKKS round`);
  }

  siteGone(): void {}

  finish(): Promise<EncryptedAggregate> {
    try {
      const bytes = this.sum.serialize();
      return Promise.resolve({ bytes, sha256: createHash('sha256').update(bytes).digest('hex'), sites: this.sum.count });
    } finally {
      this.sum.dispose();
    }
  }

  /** Frees the ciphertexts when the round ends without finish(). */
  dispose(): void {
    this.sum.dispose();
  }

  failure() {
    return null;
  }

  describe() {
    return { keySet: this.params.keySet, contributors: this.sum.count, ckksAddMs: this.addMs };
  }
}
