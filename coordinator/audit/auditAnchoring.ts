/**
 * Cross-site anchoring of the coordinator's audit log (shared/audit/auditHead.ts).
 *
 * Sends: the coordinator's signed chain head (the seq and hash of its last entry, signed with
 * its certified key) as an `audit_head` message to each site when its session opens, to every
 * connected site when a round starts or ends, and every `intervalMs` when the log has grown since
 * (by more than the sites' heads recorded in answer: an idle federation does not exchange heads
 * forever). Sites record it in their own logs: a coordinator that later rewrote its history is
 * caught by their copies (`fedmed audit cross-check`).
 *
 * Receives: each site's signed head (after it recorded one of ours, and with its results),
 * checked against the key the site enrolled (the one its sessions authenticate with) and
 * recorded as `site_head.received` {seq, hash, at, signature, key}; one with a bad signature is
 * logged and recorded as `site_head.refused` (never as received). At most one entry per site per
 * `recordEveryMs` (the newest head waiting is recorded when the interval has passed); a head
 * identical to the last one recorded is not recorded again.
 */
import type { CoordinatorFederation } from '../federation/coordinatorFederation.js';
import type { FederationEvents } from '../events/federationEvents.js';
import type { EdgeGateway } from '../gateway/edgeGateway.js';
import type { SiteRegistry } from '../siteRegistry.js';
import type { MessageOf } from '../../shared/protocol/messages.js';
import { publicKeyFromB64 } from '../../shared/secure/identity.js';
import { keyId, signHead, verifyHead, type SignedHead } from '../../shared/audit/auditHead.js';
import { HeadThrottle } from '../../shared/audit/headThrottle.js';
import { AUDIT_TAIL, type AuditLog } from '../../shared/audit/auditLog.js';

export interface AnchoringOptions {
  /** Re-send the head this often when the log grew (default 60 s). */
  intervalMs?: number;
  /** At most one recorded head per site this often (default 1 s). */
  recordEveryMs?: number;
}

type Log = { warn(o: object, msg: string): void };

export class AuditAnchoring {
  private readonly timer: NodeJS.Timeout;
  private readonly unsubscribe: () => void;
  private readonly throttle: HeadThrottle<{ head: SignedHead; ok: boolean; key: string }>;
  /** The last head recorded per site (seq:hash). */
  private readonly recorded = new Map<string, string>();
  private lastBroadcastSeq = 0;
  private broadcasting: Promise<void> | null = null;
  private again = false;
  private closed = false;

  constructor(
    private readonly d: { audit: AuditLog; gateway: EdgeGateway; federation: CoordinatorFederation; sites: SiteRegistry; events: FederationEvents; log: Log },
    o: AnchoringOptions = {},
  ) {
    this.throttle = new HeadThrottle(o.recordEveryMs ?? 1000, (site, r) => this.record(site, r.head, r.ok, r.key));
    d.gateway.onAuditHead = (site, m) => this.onSiteHead(site, m);
    this.unsubscribe = d.events.on((e) => {
      if (e.type === 'site' && e.online && !e.change) void this.sendTo([e.site]);
      else if (e.type === 'round') this.broadcast();
    });
    this.timer = setInterval(() => {
      if (this.grewSinceBroadcast()) this.broadcast();
    }, o.intervalMs ?? 60_000);
    this.timer.unref();
  }

  /** Sends the current head to every connected site (coalesced: one send for a burst of triggers). */
  broadcast(): void {
    if (this.broadcasting) {
      this.again = true;
      return;
    }
    this.broadcasting = (async () => {
      do {
        this.again = false;
        await this.sendTo(this.d.gateway.readySites());
      } while (this.again && !this.closed);
      this.broadcasting = null;
    })();
  }

  /** Stops sending; records the site heads still waiting. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.unsubscribe();
    await this.broadcasting;
    this.throttle.flush();
  }

  /**
   * Whether the log has entries since the last broadcast other than the sites' heads recorded in
   * answer to it (which would otherwise make an idle federation exchange heads forever).
   */
  private grewSinceBroadcast(): boolean {
    const tail = this.d.audit.entries(AUDIT_TAIL);
    for (let i = tail.length - 1; i >= 0; i--) {
      const e = tail[i];
      if (!('seq' in e)) return true;
      if (e.seq <= this.lastBroadcastSeq) return false;
      if (!e.action.startsWith('site_head.')) return true;
    }
    return tail.length > 0 && this.lastBroadcastSeq === 0;
  }

  private async sendTo(sites: string[]): Promise<void> {
    // (after what the triggering event appended is on disk: the head covers it)
    await new Promise((r) => setImmediate(r));
    await this.d.audit.flush();
    if (this.closed || sites.length === 0 || !this.d.federation.certificate) return;
    const signed = signHead(this.d.federation.signingKey, { kind: 'coordinator' }, this.d.audit.head());
    this.lastBroadcastSeq = Math.max(this.lastBroadcastSeq, signed.seq);
    await Promise.all(sites.map((s) => this.d.gateway.send(s, { type: 'audit_head', ...signed }).catch(() => {})));
  }

  private onSiteHead(site: string, m: MessageOf<'audit_head'>): void {
    const head: SignedHead = { seq: m.seq, hash: m.hash, at: m.at, signature: m.signature };
    const publicKey = this.d.sites.find(site)?.publicKey;
    let ok = false;
    try {
      ok = !!publicKey && verifyHead(publicKeyFromB64(publicKey), { kind: 'site', site }, head);
    } catch {
      ok = false;
    }
    this.throttle.offer(site, { head, ok, key: publicKey ? keyId(publicKey) : '' });
  }

  private record(site: string, head: SignedHead, ok: boolean, key: string): void {
    const k = `${ok}:${head.seq}:${head.hash}`;
    if (this.recorded.get(site) === k) return;
    this.recorded.set(site, k);
    if (!ok) this.d.log.warn({ site, seq: head.seq }, `audit head from site "${site}" refused: its signature does not verify against the key the site enrolled`);
    const details = { seq: head.seq, hash: head.hash, at: head.at, signature: head.signature, key };
    void this.d.audit.append(
      ok
        ? { actor: { kind: 'site', site }, action: 'site_head.received', subject: site, details }
        : { actor: { kind: 'site', site }, action: 'site_head.refused', subject: site, details: { seq: head.seq, hash: head.hash, reason: 'the signature does not verify against the key the site enrolled' } },
    );
  }
}
