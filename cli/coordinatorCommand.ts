/** `fedmed coordinator start`: runs the coordinator until SIGTERM/SIGINT (or, with PostgreSQL, until it loses the active lease). */
import { Command } from 'commander';
import type { StandbyLease } from '../coordinator/store/standbyLease.js';
import { reexecWithCoordinatorHeap } from './coordinatorHeap.js';
import { intOption } from './parseNumber.js';
import { DEFAULT_COORDINATOR_LIMITS as L } from '../coordinator/limits.js';

/** The limit flags (coordinator/limits.ts; README, Federation > Limits). */
interface LimitFlags {
  authTimeoutMs: number;
  maxUnauthenticated: number;
  maxUnauthenticatedPerAddress: number;
  preAuthFrameBytes: number;
  preAuthBytes: number;
  maxTransferBytes: number;
  requestTimeoutMs: number;
  connectionTimeoutMs: number;
  keepAliveTimeoutMs: number;
  maxConnections: number;
  enrollRateLimit: number;
  tokenRateLimit: number;
  rateLimitWindowMs: number;
}

export function coordinatorCommand(): Command {
  const cmd = new Command('coordinator').description('run the federation coordinator');
  cmd
    .command('start')
    .description('serve the REST API and the edge WebSocket endpoint on one port')
    .requiredOption('--data-dir <dir>', 'where the store, model blobs, keys and admin token live')
    .option('--host <host>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port (0 = any free port)', intOption('--port', 0), 8700)
    .option('--database <url>', 'PostgreSQL URL (postgres://USER@HOST/DB) for the records, instead of SQLite in --data-dir; or set FEDMED_DATABASE_URL (keeps a password out of the process list)')
    .option('--tls-cert <file>', 'PEM certificate: serve https/wss')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--log-level <level>', 'pino log level (fatal, error, warn, info, debug)', 'info')
    .option('--auth-timeout-ms <ms>', 'an edge must authenticate within this after connecting', intOption('--auth-timeout-ms', 100), L.authTimeoutMs)
    .option('--max-unauthenticated <n>', 'unauthenticated edge connections in total', intOption('--max-unauthenticated', 1), L.maxUnauthenticated)
    .option('--max-unauthenticated-per-address <n>', 'unauthenticated edge connections per remote address', intOption('--max-unauthenticated-per-address', 1), L.maxUnauthenticatedPerAddress)
    .option('--pre-auth-frame-bytes <bytes>', 'largest frame before authentication (no chunked transfers then)', intOption('--pre-auth-frame-bytes', 256), L.preAuthFrameBytes)
    .option('--pre-auth-bytes <bytes>', 'bytes an edge may send in all before it authenticates', intOption('--pre-auth-bytes', 1024), L.preAuthBytes)
    .option('--max-transfer-bytes <bytes>', 'largest chunked payload from an authenticated edge', intOption('--max-transfer-bytes', 1), L.maxTransferBytes)
    .option('--request-timeout-ms <ms>', 'an HTTP request (headers and body) must arrive within this', intOption('--request-timeout-ms', 100), L.requestTimeoutMs)
    .option('--connection-timeout-ms <ms>', 'an idle HTTP socket is closed after this', intOption('--connection-timeout-ms', 100), L.connectionTimeoutMs)
    .option('--keep-alive-timeout-ms <ms>', 'an idle keep-alive HTTP connection is closed after this', intOption('--keep-alive-timeout-ms', 100), L.keepAliveTimeoutMs)
    .option('--max-connections <n>', 'TCP connections in total (HTTP and WebSocket); new ones above it are dropped', intOption('--max-connections', 1), L.maxConnections)
    .option('--enroll-rate-limit <n>', 'POST /v1/enroll requests per window, per address and per join token', intOption('--enroll-rate-limit', 1), L.enrollRate.max)
    .option('--token-rate-limit <n>', 'POST /v1/tokens and /v1/sites requests per window, per address and per bearer token', intOption('--token-rate-limit', 1), L.tokenRate.max)
    .option('--rate-limit-window-ms <ms>', 'window of the rate limits', intOption('--rate-limit-window-ms', 100), L.enrollRate.windowMs)
    .action(async (flags: { dataDir: string; database?: string; host: string; port: number; tlsCert?: string; tlsKey?: string; logLevel: string } & LimitFlags) => {
      reexecWithCoordinatorHeap(); // returns only once the heap is set up for a coordinator
      const { startCoordinator } = await import('../coordinator/coordinatorServer.js');
      const { enrollRateLimit, tokenRateLimit, rateLimitWindowMs, authTimeoutMs, maxUnauthenticated, maxUnauthenticatedPerAddress, preAuthFrameBytes, preAuthBytes, maxTransferBytes, requestTimeoutMs, connectionTimeoutMs, keepAliveTimeoutMs, maxConnections } = flags;
      const limits = {
        ...{ authTimeoutMs, maxUnauthenticated, maxUnauthenticatedPerAddress, preAuthFrameBytes, preAuthBytes, maxTransferBytes, requestTimeoutMs, connectionTimeoutMs, keepAliveTimeoutMs, maxConnections },
        enrollRate: { max: enrollRateLimit, windowMs: rateLimitWindowMs },
        tokenRate: { max: tokenRateLimit, windowMs: rateLimitWindowMs },
      };
      const database = flags.database ?? (process.env.FEDMED_DATABASE_URL || undefined);
      // With PostgreSQL: the active coordinator's lease first (README, Standby coordinator); a
      // second coordinator on the same database waits here as standby until it is free.
      const lease = database ? await takeLease(database, flags.dataDir) : null;
      let c: Awaited<ReturnType<typeof startCoordinator>>;
      try {
        c = await startCoordinator({ dataDir: flags.dataDir, database, host: flags.host, port: flags.port, tlsCert: flags.tlsCert, tlsKey: flags.tlsKey, logLevel: flags.logLevel, limits });
      } catch (err) {
        await lease?.release(); // (a coordinator that could not start must not keep the standbys waiting)
        throw err;
      }
      // One machine-readable line for scripts and tests: where it listens and where the admin token is.
      process.stdout.write(`${JSON.stringify({ event: 'listening', url: c.url, adminTokenFile: `${flags.dataDir}/admin.token`, ...(lease ? { lease: { session: lease.sessionPid, waitedMs: lease.waitedMs } } : {}) })}\n`);
      const shutdown = (signal: string): void => {
        c.app.log.info({ signal }, 'shutting down');
        void c.close(`coordinator shutting down (${signal})`).then(() => lease?.release()).then(() => process.exit(0));
      };
      process.once('SIGTERM', () => shutdown('SIGTERM'));
      process.once('SIGINT', () => shutdown('SIGINT'));
      await new Promise(() => {}); // run until a signal arrives
    });
  return cmd;
}

/** Exit status of a coordinator that lost the active lease (EX_TEMPFAIL: a supervisor may start it again, as standby). */
export const LEASE_LOST_EXIT = 75;

/**
 * Takes the active lease in PostgreSQL, waiting as standby (one `{"event":"standby"}` line) while
 * another coordinator holds it. Once held, losing it ends this process at once, before anything
 * more is served or written (a standby is taking over); the data dir lock of the previous active
 * is taken over.
 */
async function takeLease(database: string, dataDir: string): Promise<StandbyLease> {
  const { StandbyLease } = await import('../coordinator/store/standbyLease.js');
  const { takeOverDataDirLockWithLease } = await import('../coordinator/store/dataDirLock.js');
  const line = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`);
  const lease = await StandbyLease.acquire(database, {
    onStandby: (holder) => line({ event: 'standby', message: 'another coordinator holds the active lease in PostgreSQL: waiting to take over', dataDir, holder }),
    log: (event, detail) => line({ event, ...detail }),
  });
  lease.onLost((reason) => {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), event: 'lease_lost', reason, message: 'this coordinator no longer holds the active lease: it stops now (a standby takes over)' })}\n`);
    process.exit(LEASE_LOST_EXIT);
  });
  if (lease.waitedMs > 0) line({ event: 'lease_taken', waitedMs: lease.waitedMs, session: lease.sessionPid });
  await takeOverDataDirLockWithLease(dataDir);
  return lease;
}
