/**
 * Cross-site anchoring at the edge (shared/audit/auditHead.ts): the coordinator's signed audit
 * chain heads are checked and kept in this site's own audit log, and this site's signed head
 * goes to the coordinator.
 *
 *   - A coordinator `audit_head` is checked against the key of the current session's coordinator
 *     (the one the federation admin certified, checked in the handshake against the admin key this
 *     site pinned). A good one is recorded as `coordinator_head.received` {seq, hash, at,
 *     signature, key}. A bad signature is logged (`coordinator_head_refused`) and recorded as
 *     `coordinator_head.refused` — never as received. A head whose seq is below one this site
 *     already holds, or that names another hash for a seq it holds, is recorded as received and
 *     flagged (`regressed`, `conflict`): the coordinator's log went back or was rewritten.
 *   - This site's own head, signed with its enrolled identity key, is sent after each recorded
 *     coordinator head and after each result the site sends.
 * At most one coordinator head is recorded per `recordEveryMs` (the newest waiting one when the
 * interval has passed), so a coordinator cannot grow this site's log by flooding it.
 */
import type { KeyObject } from 'node:crypto';
import type { AuditLog } from '../../shared/audit/auditLog.js';
import { keyId, signHead, verifyHead, type SignedHead } from '../../shared/audit/auditHead.js';
import { HeadThrottle } from '../../shared/audit/headThrottle.js';
import type { Message, MessageOf } from '../../shared/protocol/messages.js';

export interface EdgeAnchoringOptions {
  audit: AuditLog;
  site: string;
  /** This site's enrolled Ed25519 identity key. */
  identity: KeyObject;
  /** Sends on the current session (rejects when disconnected). */
  send: (m: Message) => Promise<void>;
  log: (event: string, detail?: Record<string, unknown>) => void;
  recordEveryMs?: number;
}

export class EdgeAnchoring {
  private readonly throttle: HeadThrottle<{ head: SignedHead; key: string }>;
  /** Hash per seq of the coordinator heads this site holds (the newest few hundred), and the highest seq. */
  private readonly held = new Map<number, string>();
  private highest = 0;
  private lastRecorded = '';
  private lastRefusalAt = -Infinity;

  constructor(private readonly o: EdgeAnchoringOptions) {
    this.throttle = new HeadThrottle(o.recordEveryMs ?? 1000, (_s, r) => void this.record(r.head, r.key));
    for (const e of o.audit.entries(1000)) if ('action' in e && e.action === 'coordinator_head.received') this.hold(Number(e.details.seq), String(e.details.hash));
  }

  /** A coordinator's `audit_head`, with the session's certified coordinator key. */
  onCoordinatorHead(m: MessageOf<'audit_head'>, coordinator: { key: KeyObject; publicKeyB64: string } | null): void {
    const head: SignedHead = { seq: m.seq, hash: m.hash, at: m.at, signature: m.signature };
    if (!coordinator || !verifyHead(coordinator.key, { kind: 'coordinator' }, head)) {
      const reason = coordinator ? "the signature does not verify against the certified coordinator key of this session" : 'no authenticated coordinator session';
      this.o.log('coordinator_head_refused', { seq: m.seq, reason });
      if (Date.now() - this.lastRefusalAt < (this.o.recordEveryMs ?? 1000)) return;
      this.lastRefusalAt = Date.now();
      void this.o.audit.append({ actor: { kind: 'coordinator' }, action: 'coordinator_head.refused', subject: 'coordinator', details: { seq: m.seq, hash: m.hash, reason } });
      return;
    }
    this.throttle.offer('coordinator', { head, key: keyId(coordinator.publicKeyB64) });
  }

  /** Sends this site's signed head (after what was queued is on disk). */
  async sendOwnHead(): Promise<void> {
    await this.o.audit.flush();
    const signed = signHead(this.o.identity, { kind: 'site', site: this.o.site }, this.o.audit.head());
    await this.o.send({ type: 'audit_head', ...signed }).catch(() => {});
  }

  /** Records what is waiting now (at shutdown). */
  flush(): void {
    this.throttle.flush();
  }

  private async record(head: SignedHead, key: string): Promise<void> {
    const k = `${head.seq}:${head.hash}`;
    if (k === this.lastRecorded) return;
    this.lastRecorded = k;
    const before = this.held.get(head.seq);
    const conflict = before !== undefined && before !== head.hash;
    const regressed = head.seq < this.highest;
    if (conflict || regressed) this.o.log('coordinator_head_inconsistent', { seq: head.seq, hash: head.hash, held: before ?? null, highest: this.highest, warning: conflict ? `the coordinator signed another hash for seq ${head.seq} than it did before: its audit log was rewritten` : `the coordinator's audit log is at seq ${head.seq}, below the ${this.highest} it signed before: it went back (archived or rewritten)` });
    this.hold(head.seq, head.hash);
    const entry = await this.o.audit.append({
      actor: { kind: 'coordinator' },
      action: 'coordinator_head.received',
      subject: 'coordinator',
      details: { seq: head.seq, hash: head.hash, at: head.at, signature: head.signature, key, ...(conflict ? { conflict: true, heldHash: before } : {}), ...(regressed ? { regressed: true } : {}) },
    });
    if (entry) this.o.log('coordinator_head_recorded', { seq: head.seq, entry: entry.seq });
    await this.sendOwnHead();
  }

  private hold(seq: number, hash: string): void {
    this.held.set(seq, hash);
    this.highest = Math.max(this.highest, seq);
    if (this.held.size > 500) this.held.delete(this.held.keys().next().value!);
  }
}
