/**
 * The edge's side of the session handshake, as an explicit state machine:
 *
 *   (open) → send hello → await challenge → check it → send auth → await welcome → ready
 *
 * The challenge must carry a coordinator certificate that verifies against the admin key this
 * site pinned (not revoked, valid now, naming the URL the site dials) and a signature, by that
 * certified key, over this site's name, the fresh nonce and the TLS channel binding of this
 * very connection. Only then does the site sign the same with its own key. Any other message,
 * in any other order, ends the handshake with a HandshakeError naming what happened: nothing
 * of the site's is sent to a peer that has not proved it is the federation's coordinator.
 */
import type { KeyObject } from 'node:crypto';
import { FedmedError } from '../../shared/errors.js';
import { AUTH_DOMAIN, CHALLENGE_DOMAIN, PROTOCOL_VERSIONS, type Message } from '../../shared/protocol/messages.js';
import { publicKeyFromB64, signMessage, verifyMessage } from '../../shared/secure/identity.js';
import type { CoordinatorCertificateBody } from '../../shared/secure/trust/certificates.js';
import { TrustError } from '../../shared/secure/trust/trustError.js';
import type { FederationTrust } from '../../shared/secure/trust/federationTrust.js';

export type HandshakeState = 'idle' | 'awaiting_challenge' | 'awaiting_welcome' | 'ready' | 'failed';

export class HandshakeError extends FedmedError {
  constructor(
    message: string,
    /** Retrying cannot help (a forged certificate, a key that is not certified): the edge stops. */
    readonly fatal: boolean,
  ) {
    super('HANDSHAKE', message);
  }
}

export interface Authenticated {
  version: number;
  heartbeatMs: number;
  /** The admin-certified coordinator of this session and its key (manifests and updates are checked with it). */
  coordinator: CoordinatorCertificateBody;
  coordinatorKey: KeyObject;
}

export interface HandshakeOptions {
  site: string;
  identity: KeyObject;
  /** The site's pinned admin key and revocation list (an EdgeTrust keeps newer lists on disk). */
  trust: FederationTrust;
  coordinatorUrl: string;
  /** The connection's TLS channel binding (`none` on plain TCP); read when the challenge arrives. */
  channelBinding: () => string;
  log: (event: string, detail?: Record<string, unknown>) => void;
}

export class EdgeHandshake {
  state: HandshakeState = 'idle';
  private pending: Omit<Authenticated, 'heartbeatMs'> | null = null;

  constructor(private readonly o: HandshakeOptions) {}

  get ready(): boolean {
    return this.state === 'ready';
  }

  /** The first message of the session. */
  hello(): Message {
    this.expect('idle', 'hello');
    this.state = 'awaiting_challenge';
    return { type: 'hello', site: this.o.site, versions: [...PROTOCOL_VERSIONS] };
  }

  /**
   * One message during the handshake. Returns the auth message to send after a valid
   * challenge, the session once welcomed; throws HandshakeError for anything else.
   */
  receive(m: Message): { send: Message } | { ready: Authenticated } {
    if (this.state === 'awaiting_challenge') {
      if (m.type !== 'challenge') return this.fail(`the coordinator sent ${m.type} before proving its identity (expected a challenge)`, true);
      return { send: this.challenge(m) };
    }
    if (this.state === 'awaiting_welcome') {
      if (m.type !== 'welcome') return this.fail(`the coordinator sent ${m.type} where the handshake expects welcome`, true);
      if (m.site !== this.o.site) return this.fail(`the coordinator welcomed site "${m.site}", not this site`, true);
      this.state = 'ready';
      return { ready: { ...this.pending!, heartbeatMs: m.heartbeatMs } };
    }
    return this.fail(`${m.type} arrived in handshake state "${this.state}"`, true);
  }

  private challenge(m: Extract<Message, { type: 'challenge' }>): Message {
    if (!(PROTOCOL_VERSIONS as readonly number[]).includes(m.version)) return this.fail(`the coordinator chose protocol version ${m.version}, which this edge did not offer`, true);
    const trust = this.o.trust;
    if (m.revocations) {
      try {
        if (trust.acceptRevocations(m.revocations)) this.o.log('revocations_updated', { sequence: trust.revocationSequence });
      } catch (err) {
        if (!(err instanceof TrustError)) throw err;
        // An older list than ours: keep ours (nobody is un-revoked); a forged one: the coordinator lies.
        if (err.reason !== 'stale') return this.fail(`the coordinator presented a revocation list the federation admin did not sign: ${err.message}`, true);
        this.o.log('revocations_stale', { reason: err.message, held: trust.revocationSequence });
      }
    }
    let cert: CoordinatorCertificateBody;
    try {
      cert = trust.coordinator(m.certificate, { url: this.o.coordinatorUrl });
    } catch (err) {
      if (!(err instanceof TrustError)) throw err;
      // Expired or not yet valid may be fixed by the admin (or a clock); the rest is an impostor.
      return this.fail(`the coordinator's certificate is refused: ${err.message}`, err.reason !== 'expired' && err.reason !== 'not_yet_valid');
    }
    const key = publicKeyFromB64(cert.publicKey);
    let binding: string;
    try {
      binding = this.o.channelBinding();
    } catch (err) {
      return this.fail(`no TLS channel binding for this connection: ${(err as Error).message}`, true);
    }
    if (!verifyMessage(key, m.signature, CHALLENGE_DOMAIN, this.o.site, m.nonce, binding)) {
      return this.fail(`the challenge is not signed by the certified coordinator key for this connection${binding === 'none' ? '' : ' (TLS channel binding differs: a relay between this site and the coordinator?)'}`, true);
    }
    this.pending = { version: m.version, coordinator: cert, coordinatorKey: key };
    this.state = 'awaiting_welcome';
    return { type: 'auth', signature: signMessage(this.o.identity, AUTH_DOMAIN, this.o.site, m.nonce, binding) };
  }

  private expect(state: HandshakeState, what: string): void {
    if (this.state !== state) throw new HandshakeError(`${what} in handshake state "${this.state}"`, false);
  }

  private fail(message: string, fatal: boolean): never {
    this.state = 'failed';
    throw new HandshakeError(message, fatal);
  }
}
