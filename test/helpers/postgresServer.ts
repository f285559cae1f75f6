/**
 * A throwaway PostgreSQL server for tests: Debian's binaries (/usr/lib/postgresql/N/bin, the
 * `postgresql` package .ci/run installs), a cluster made by initdb in a temp dir, the server
 * bound to 127.0.0.1 on a free port with its socket in that temp dir, fsync on (the durability
 * the coordinator relies on), password (SCRAM) authentication over TCP. PostgreSQL refuses to
 * run as root, so as root (CI) initdb and the server run as the `postgres` user Debian's package
 * creates, spawned with its uid/gid, the temp dir handed to it.
 *
 * FEDMED_POSTGRES_BIN names another bin dir (a non-Debian machine). Outside CI a machine without the binaries skips (startPostgresOrSkip returns null and says
 * why); in CI (CI=true) their absence is an error. The server is stopped by pid — SIGINT (fast
 * shutdown: it disconnects clients), SIGKILL if it has not exited within 10 s — and its temp dir
 * removed; if the test process exits first, an exit hook kills it.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface PostgresServer {
  /** postgres://fedmed:PASSWORD@127.0.0.1:PORT/fedmed_test — a superuser on a fresh database. */
  url: string;
  /** Creates another empty database and returns its URL (same user and password). */
  createDatabase(name?: string): Promise<string>;
  /**
   * Creates an empty schema in the test database and returns a URL whose search_path is that
   * schema: a fresh store in a few milliseconds (CREATE DATABASE flushes a copy of the template).
   */
  createSchema(): Promise<string>;
  /** The socket dir (for `psql -h`), the port and the password, for tests that need them. */
  socketDir: string;
  port: number;
  password: string;
  stop(): Promise<void>;
}

/** The bin dir of the newest PostgreSQL Debian installed (or FEDMED_POSTGRES_BIN's, elsewhere), or null. */
export function postgresBinDir(): string | null {
  const own = process.env.FEDMED_POSTGRES_BIN;
  if (own) return existsSync(join(own, 'initdb')) && existsSync(join(own, 'postgres')) ? own : null;
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return null;
  const versions = readdirSync(root)
    .filter((v) => /^\d+(\.\d+)?$/.test(v) && existsSync(join(root, v, 'bin', 'initdb')) && existsSync(join(root, v, 'bin', 'postgres')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length ? join(root, versions[0], 'bin') : null;
}

/**
 * Starts a server, or (outside CI, without the binaries) prints why and returns null so the
 * caller can `this.skip()`. In CI a missing installation throws.
 */
export async function startPostgresOrSkip(): Promise<PostgresServer | null> {
  const bin = postgresBinDir();
  if (!bin) {
    const why = process.env.FEDMED_POSTGRES_BIN
      ? `FEDMED_POSTGRES_BIN=${process.env.FEDMED_POSTGRES_BIN} has no initdb and postgres`
      : 'PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): apt-get install postgresql (.ci/run does)';
    if (process.env.CI) throw new Error(`CI must have PostgreSQL: ${why}`);
    console.log(`      (skipped: ${why})`);
    return null;
  }
  return startPostgres(bin);
}

interface RunAs {
  uid?: number;
  gid?: number;
}

/** Root cannot run PostgreSQL: run it as Debian's `postgres` user (or `nobody`). */
function runAs(): RunAs {
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return {};
  const passwd = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':'));
  const entry = passwd.find((f) => f[0] === 'postgres') ?? passwd.find((f) => f[0] === 'nobody');
  if (!entry) throw new Error('running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as');
  return { uid: Number(entry[2]), gid: Number(entry[3]) };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

const live = new Set<{ child: ChildProcess; dir: string }>();
let exitHook = false;

export async function startPostgres(bin: string): Promise<PostgresServer> {
  const who = runAs();
  // As root, the dir must be reachable by the user the server runs as: /tmp is (TMPDIR may not be).
  const dir = mkdtempSync(join(who.uid !== undefined && existsSync('/tmp') ? '/tmp' : tmpdir(), 'fedmed-pg-'));
  const data = join(dir, 'data');
  const socketDir = join(dir, 'sock');
  mkdirSync(socketDir);
  const password = randomBytes(12).toString('base64url');
  const pwfile = join(dir, 'pwfile');
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  if (who.uid !== undefined) for (const p of [dir, socketDir, pwfile]) chownSync(p, who.uid, who.gid!);

  const env = { ...process.env, LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
  const init = spawnSync(
    join(bin, 'initdb'),
    ['-D', data, '-U', 'fedmed', `--pwfile=${pwfile}`, '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C', '--no-sync', '--no-instructions'],
    { ...who, env, cwd: dir, encoding: 'utf8', timeout: 60_000 },
  );
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status ?? init.signal ?? init.error?.message}): ${init.stderr || init.stdout}`);
  }
  rmSync(pwfile);

  let port = 0;
  let child: ChildProcess | null = null;
  let log = '';
  for (let attempt = 0; attempt < 3 && !child; attempt++) {
    port = await freePort();
    log = '';
    const c = spawn(
      join(bin, 'postgres'),
      ['-D', data, '-p', String(port), '-k', socketDir, '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=on', '-c', 'synchronous_commit=on', '-c', 'max_connections=50', '-c', 'shared_buffers=16MB', '-c', 'log_min_messages=warning', '-c', 'logging_collector=off'],
      { ...who, env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const keep = (d: Buffer): void => {
      log = (log + d.toString()).slice(-8000);
    };
    c.stdout!.on('data', keep);
    c.stderr!.on('data', keep);
    const entry = { child: c, dir };
    live.add(entry);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const e of live) {
          try { e.child.kill('SIGKILL'); } catch { /* gone */ }
          rmSync(e.dir, { recursive: true, force: true });
        }
      });
    }
    if (await ready(c, port, password)) child = c;
    else {
      live.delete(entry);
      await kill(c);
    }
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`PostgreSQL did not start: ${log.slice(-2000)}`);
  }

  const base = `postgres://fedmed:${password}@127.0.0.1:${port}`;
  const createDatabase = async (name = `fedmed_${randomBytes(6).toString('hex')}`): Promise<string> => {
    const admin = new pg.Client({ connectionString: `${base}/postgres` });
    await admin.connect();
    try {
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(name)}`);
    } finally {
      await admin.end();
    }
    return `${base}/${name}`;
  };
  const url = await createDatabase('fedmed_test');
  let schemas = 0;
  const createSchema = async (): Promise<string> => {
    const schema = `s${++schemas}_${randomBytes(3).toString('hex')}`;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
    } finally {
      await admin.end();
    }
    return `${url}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
  };
  const running = child;
  let stopped: Promise<void> | null = null;
  return {
    url,
    createDatabase,
    createSchema,
    socketDir,
    port,
    password,
    stop: () =>
      (stopped ??= (async () => {
        await kill(running);
        for (const e of live) if (e.child === running) live.delete(e);
        rmSync(dir, { recursive: true, force: true });
      })()),
  };
}

/** Waits until the server accepts a password login (false if it exited or 30 s passed). */
async function ready(child: ChildProcess, port: number, password: string): Promise<boolean> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const c = new pg.Client({ host: '127.0.0.1', port, user: 'fedmed', password, database: 'postgres', connectionTimeoutMillis: 2000 });
    c.on('error', () => {});
    try {
      await c.connect();
      await c.end();
      return true;
    } catch {
      await c.end().catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return false;
}

/** SIGINT (PostgreSQL's fast shutdown), then SIGKILL after 10 s. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
