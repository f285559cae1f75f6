/**
 * Tells the coordinator how ready this site is (`data_status`): its labelled examples per split,
 * shaped by the site policy at the moment of sending (SiteRules.dataStatus). Sent after each
 * connection and whenever what would be sent changes, at most once per `minIntervalMs` (labels
 * arrive one click at a time; the coordinator needs the state, not every step of it).
 */
import type { DataStatus, Message } from '../../shared/protocol/messages.js';

export interface SplitCounts {
  train: number;
  validation: number;
  test: number;
}

export interface DataStatusReporterOptions {
  /** The status as the policy lets it out now (`previous`: the last one told, for sticky buckets). */
  shape: (counts: SplitCounts, previous: DataStatus | null) => DataStatus;
  /** Sends on the authenticated session; null when there is none. */
  send: (message: Message) => Promise<void> | null;
  minIntervalMs: number;
}

export class DataStatusReporter {
  private counts: SplitCounts | null = null;
  /** What the coordinator was last told on this connection (null: nothing yet). */
  private sent: string | null = null;
  /** The last status told, on any connection (what the coordinator may already know). */
  private told: DataStatus | null = null;
  private sentAt = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly o: DataStatusReporterOptions) {}

  /** The counts now (cheap to call often: only a change is sent). */
  update(counts: SplitCounts): void {
    this.counts = counts;
    this.schedule();
  }

  /** A new session: the coordinator knows nothing yet. */
  connected(): void {
    this.sent = null;
    this.sentAt = -Infinity;
    this.schedule();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private schedule(): void {
    if (!this.counts || this.timer) return;
    const wait = Math.max(0, this.sentAt + this.o.minIntervalMs - Date.now());
    this.timer = setTimeout(() => this.flush(), wait).unref();
  }

  private flush(): void {
    this.timer = null;
    if (!this.counts) return;
    const status = this.o.shape(this.counts, this.told);
    const text = JSON.stringify(status);
    if (text === this.sent) return;
    const sending = this.o.send({ type: 'data_status', ...status });
    if (!sending) return; // not connected: connected() sends it
    sending.catch(() => {});
    this.sent = text;
    this.told = status;
    this.sentAt = Date.now();
  }
}
