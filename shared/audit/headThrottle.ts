/**
 * How often the other side's signed chain heads are recorded: at most one entry per sender per
 * interval, the newest one kept and recorded when the interval has passed (trailing), so a peer
 * that floods `audit_head` cannot grow this side's audit log, and no head is lost for long.
 */
export class HeadThrottle<T> {
  private readonly last = new Map<string, number>();
  private readonly pending = new Map<string, { value: T; timer: NodeJS.Timeout }>();

  constructor(
    private readonly intervalMs: number,
    private readonly record: (sender: string, value: T) => void,
  ) {}

  offer(sender: string, value: T): void {
    const queued = this.pending.get(sender);
    if (queued) return void (queued.value = value);
    const wait = (this.last.get(sender) ?? -Infinity) + this.intervalMs - Date.now();
    if (wait <= 0) return this.fire(sender, value);
    const timer = setTimeout(() => {
      const p = this.pending.get(sender);
      this.pending.delete(sender);
      if (p) this.fire(sender, p.value);
    }, wait);
    timer.unref();
    this.pending.set(sender, { value, timer });
  }

  /** Records what is waiting now (at shutdown). */
  flush(): void {
    for (const [sender, p] of [...this.pending]) {
      clearTimeout(p.timer);
      this.pending.delete(sender);
      this.fire(sender, p.value);
    }
  }

  private fire(sender: string, value: T): void {
    this.last.set(sender, Date.now());
    this.record(sender, value);
  }
}
