/**
 * The active coordinator's lease, for running a standby (PostgreSQL store only): a
 * session-level advisory lock, pg_advisory_lock(ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE), held
 * on a connection of its own for as long as the coordinator serves. A second `coordinator start`
 * on the same database finds it held, says so (`onStandby`) and tries again every `pollMs`;
 * PostgreSQL releases the lock when the holder's session ends — at once when the process dies
 * on a live host (the kernel closes its socket), after the server's TCP keepalives give up when
 * the host vanished (set on the session below: about 8 s of silence) — and the first standby to
 * try next becomes active.
 *
 * Holding the lease is checked all the time: the connection ending or failing, or a check
 * (`SELECT 1` every `pingMs`) unanswered within `pingTimeoutMs`, loses it, and `onLost` runs
 * (the CLI exits at once, non-zero). The check gives up (3 s) well before the server would
 * release the lock of a vanished host (~8 s), so the old active stops before a standby can
 * start; and the store's commits are fenced with the lease (postgresBackend.ts
 * fenceWritesWithLease): one begun after the lease's session ended is rolled back, and a new
 * holder waits for those begun before (the write barrier) before it reads the store.
 *
 * The lease is per database (advisory locks are): one federation per PostgreSQL database.
 */
import { hostname } from 'node:os';
import type pg from 'pg';
import { ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE, ADVISORY_LOCK_WRITES, PostgresBackend, fenceWritesWithLease } from './postgresBackend.js';
import { errorMessage } from '../../shared/errors.js';

export interface LeaseTimings {
  /** A standby tries to take the lock this often. */
  pollMs: number;
  /** The active checks its lease connection this often… */
  pingMs: number;
  /** …and gives the lease up when a check is not answered within this. */
  pingTimeoutMs: number;
  /** Client TCP keepalive: first probe after this much silence (libuv then probes every second). */
  keepAliveInitialDelayMs: number;
  /** Standby: a lost connection is re-made after this. */
  reconnectMs: number;
}

export const DEFAULT_LEASE_TIMINGS: LeaseTimings = { pollMs: 500, pingMs: 1000, pingTimeoutMs: 3000, keepAliveInitialDelayMs: 2000, reconnectMs: 1000 };

/**
 * Server side of the lease session (SET on it): the server probes a silent client after 4 s, every
 * second, and ends the session after 4 unanswered probes (or 8 s of unacknowledged data): the lock of
 * a host that vanished is released ~8 s after it went silent. Settings a server does not know
 * (tcp_user_timeout before 12, idle_session_timeout before 14) are skipped.
 */
const SESSION_SETTINGS: [string, string][] = [
  ['tcp_keepalives_idle', '4'],
  ['tcp_keepalives_interval', '1'],
  ['tcp_keepalives_count', '4'],
  ['tcp_user_timeout', '8000'],
  ['idle_session_timeout', '0'],
  ['idle_in_transaction_session_timeout', '0'],
];

/** Who holds the lease, as PostgreSQL shows it (fields the server hides from this role are null). */
export interface LeaseHolder {
  pid: number;
  application: string | null;
  client: string | null;
  since: string | null;
}

export interface LeaseOptions {
  /** Called once, when the lease is found held by another coordinator (this one then waits). */
  onStandby?: (holder: LeaseHolder | null) => void;
  /** Standby-side events worth a log line (a lost connection re-made). */
  log?: (event: string, detail: Record<string, unknown>) => void;
  timings?: Partial<LeaseTimings>;
}

export class StandbyLease {
  private lostReason: string | null = null;
  private readonly lostHandlers: ((reason: string) => void)[] = [];
  private released = false;
  private readonly timer: NodeJS.Timeout;
  private pinging = false;

  private constructor(
    private readonly client: pg.Client,
    private readonly url: string,
    /** The PostgreSQL backend pid of the lease session. */
    readonly sessionPid: number,
    /** How long this coordinator waited as standby (0: the lease was free). */
    readonly waitedMs: number,
    private readonly timings: LeaseTimings,
  ) {
    fenceWritesWithLease(url, sessionPid);
    client.on('end', () => this.lose('the lease connection to PostgreSQL ended'));
    client.on('error', (err: Error) => this.lose(`the lease connection to PostgreSQL failed: ${err.message}`));
    this.timer = setInterval(() => this.ping(), timings.pingMs);
    this.timer.unref();
  }

  /**
   * Takes the lease, waiting as standby while another coordinator holds it. The first connection
   * failing is an error (a wrong URL, a server down); one lost while waiting is re-made.
   */
  static async acquire(url: string, o: LeaseOptions = {}): Promise<StandbyLease> {
    const timings = { ...DEFAULT_LEASE_TIMINGS, ...o.timings };
    const application = `fedmed-coordinator-lease ${hostname()} pid ${process.pid}`.slice(0, 63);
    const extra: Partial<pg.ClientConfig> = { application_name: application, keepAlive: true, keepAliveInitialDelayMillis: timings.keepAliveInitialDelayMs };
    const started = Date.now();
    let connectedOnce = false;
    let announced = false;
    for (;;) {
      let client: pg.Client;
      try {
        client = (await PostgresBackend.connectSession(url, extra)).client;
      } catch (err) {
        if (!connectedOnce) throw err;
        o.log?.('standby_reconnect', { reason: errorMessage(err) });
        await sleep(timings.reconnectMs);
        continue;
      }
      connectedOnce = true;
      try {
        for (const [name, value] of SESSION_SETTINGS) {
          await client.query(`SELECT set_config($1, $2, false)`, [name, value]).catch((err: unknown) => {
            if ((err as { code?: string }).code !== '42704') throw err; // (unknown to this server: skipped)
          });
        }
        for (;;) {
          const r = await client.query('SELECT pg_try_advisory_lock($1, $2) AS ok, pg_backend_pid() AS pid', [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE]);
          const row = r.rows[0] as { ok: boolean; pid: number };
          if (row.ok) {
            // The barrier: commits the previous holder began before losing the lease end first.
            await client.query('SELECT pg_advisory_lock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_WRITES]);
            await client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_WRITES]);
            return new StandbyLease(client, url, Number(row.pid), announced ? Date.now() - started : 0, timings);
          }
          if (!announced) {
            announced = true;
            o.onStandby?.(await holderOf(client).catch(() => null));
          }
          await sleep(timings.pollMs);
        }
      } catch (err) {
        await client.end().catch(() => {});
        o.log?.('standby_reconnect', { reason: errorMessage(err) });
        await sleep(timings.reconnectMs);
      }
    }
  }

  /** Null while held; why it was lost, after. */
  get lost(): string | null {
    return this.lostReason;
  }

  /** Runs `handler` when the lease is lost (at once, on the next tick, if it already is). */
  onLost(handler: (reason: string) => void): void {
    if (this.lostReason !== null) {
      const reason = this.lostReason;
      setImmediate(() => handler(reason));
    } else this.lostHandlers.push(handler);
  }

  /** Gives the lease up (a clean shutdown, once the store is closed): a standby takes over. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    fenceWritesWithLease(this.url, null);
    await this.client.query('SELECT pg_advisory_unlock($1, $2)', [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE]).catch(() => {});
    await this.client.end().catch(() => {});
  }

  private ping(): void {
    if (this.pinging || this.released || this.lostReason !== null) return;
    this.pinging = true;
    const timeout = setTimeout(() => this.lose(`PostgreSQL did not answer the lease check within ${this.timings.pingTimeoutMs} ms`), this.timings.pingTimeoutMs);
    this.client.query('SELECT 1').then(
      () => {
        clearTimeout(timeout);
        this.pinging = false;
      },
      (err: Error) => {
        clearTimeout(timeout);
        this.lose(`the lease check failed: ${err.message}`);
      },
    );
  }

  private lose(reason: string): void {
    if (this.released || this.lostReason !== null) return;
    this.lostReason = reason;
    clearInterval(this.timer);
    // (the fence stays: it names a session that no longer holds the lock, so every commit is refused)
    void this.client.end().catch(() => {});
    for (const h of this.lostHandlers.splice(0)) h(reason);
  }
}

async function holderOf(client: pg.Client): Promise<LeaseHolder | null> {
  const r = await client.query(
    `SELECT l.pid, a.application_name, host(a.client_addr) AS client, a.backend_start
       FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 2 AND l.granted`,
    [ADVISORY_LOCK_CLASS, ADVISORY_LOCK_LEASE],
  );
  const row = r.rows[0] as { pid: number; application_name: string | null; client: string | null; backend_start: Date | null } | undefined;
  if (!row) return null;
  return { pid: Number(row.pid), application: row.application_name || null, client: row.client, since: row.backend_start ? new Date(row.backend_start).toISOString() : null };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
