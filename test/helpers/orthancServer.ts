/**
 * A throwaway Orthanc PACS for tests: Debian's `/usr/sbin/Orthanc` with the DICOMweb plugin
 * (`orthanc-dicomweb`), a temp storage dir, no authentication — and, because Orthanc has no
 * bind-address option (it listens on every interface), it runs in a fresh network namespace
 * that has only a loopback interface (`ip netns add fedmed-<random>`; needs root, as CI is).
 *
 * The test process lives in the host namespace and cannot reach that loopback, so the helper
 * bridges it over a Unix socket (a file, which both namespaces see): a tiny Node relay runs
 * inside the namespace (`ip netns exec NAME node -e …`), listens on DIR/orthanc.sock and
 * forwards each connection to 127.0.0.1:HTTP_PORT there; in the test process, a TCP listener on
 * 127.0.0.1:<free port> pipes each connection to that socket. `url` is that host-side address,
 * so tests (and the code under test) use plain `fetch` on 127.0.0.1. Nothing listens on a
 * non-loopback interface anywhere.
 *
 * Outside CI a machine without Orthanc, its DICOMweb plugin or `ip netns` (or not root) skips
 * (startOrthancOrSkip returns null and says why); in CI (CI set) that is an error. stop() kills
 * Orthanc and the relay by pid, closes the bridge, deletes the namespace and the temp dir; an
 * exit hook does the same if the test process ends first.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ORTHANC_BIN = '/usr/sbin/Orthanc';
export const DICOMWEB_PLUGIN = '/usr/share/orthanc/plugins/libOrthancDicomWeb.so';

export interface OrthancServer {
  /** http://127.0.0.1:PORT — Orthanc's REST root, through the bridge. */
  url: string;
  /** url + '/dicom-web': the DICOMweb root. */
  dicomWebUrl: string;
  /** The network namespace Orthanc runs in. */
  namespace: string;
  /** Uploads one Part 10 file (POST /instances); resolves with Orthanc's instance id. */
  upload(p10: Uint8Array): Promise<string>;
  /** Kills Orthanc (the bridge stays, so clients see a PACS that is down). */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** Why Orthanc cannot run here, or null when it can. */
export function orthancUnavailable(): string | null {
  if (!existsSync(ORTHANC_BIN)) return `Orthanc is not installed (${ORTHANC_BIN}): apt-get install orthanc orthanc-dicomweb`;
  if (!existsSync(DICOMWEB_PLUGIN)) return `the Orthanc DICOMweb plugin is not installed (${DICOMWEB_PLUGIN}): apt-get install orthanc-dicomweb`;
  if (typeof process.getuid !== 'function' || process.getuid() !== 0) return 'network namespaces need root (ip netns add); Orthanc cannot be confined to loopback otherwise';
  const ip = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (ip.status !== 0) return `ip netns is not available (${ip.error?.message ?? ip.stderr.trim()}): apt-get install iproute2`;
  return null;
}

/** Starts Orthanc, or (outside CI, when it cannot run) prints why and returns null. */
export async function startOrthancOrSkip(): Promise<OrthancServer | null> {
  const why = orthancUnavailable();
  if (why) {
    if (process.env.CI) throw new Error(`CI must be able to run Orthanc: ${why}`);
    console.log(`      (skipped: ${why})`);
    return null;
  }
  return startOrthanc();
}

interface Live {
  namespace: string;
  dir: string;
  children: ChildProcess[];
  bridge: Server;
  sockets: Set<Socket>;
}
const live = new Set<Live>();
let exitHook = false;

function ip(...args: string[]): void {
  const r = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
}

function cleanup(e: Live): void {
  for (const c of e.children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of e.sockets) s.destroy();
  e.bridge.close();
  spawnSync('ip', ['netns', 'delete', e.namespace]);
  rmSync(e.dir, { recursive: true, force: true });
}

const RELAY = `
const net = require('node:net');
const [sock, port] = process.argv.slice(1);
net.createServer((c) => {
  const u = net.connect(Number(port), '127.0.0.1');
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.pipe(u).pipe(c);
}).listen(sock, () => process.stdout.write('ready\\n'));
`;

export async function startOrthanc(): Promise<OrthancServer> {
  const namespace = `fedmed-${randomBytes(5).toString('hex')}`;
  const dir = mkdtempSync(join(tmpdir(), 'fedmed-orthanc-'));
  const storage = join(dir, 'db');
  mkdirSync(storage);
  const httpPort = 8042; // inside the namespace: nothing else listens there
  const config = {
    Name: 'fedmed-test',
    StorageDirectory: storage,
    IndexDirectory: storage,
    StorageCompression: false,
    HttpServerEnabled: true,
    HttpPort: httpPort,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    DicomServerEnabled: true,
    DicomAet: 'ORTHANC',
    DicomPort: 4242,
    Plugins: [DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false, StudiesMetadata: 'Full', SeriesMetadata: 'Full' },
    HttpTimeout: 30,
    ConcurrentJobs: 1,
  };
  const configFile = join(dir, 'orthanc.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  ip('netns', 'add', namespace);
  const bridge = createServer();
  const entry: Live = { namespace, dir, children: [], bridge, sockets: new Set() };
  live.add(entry);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const e of live) cleanup(e);
    });
  }
  let log = '';
  try {
    ip('netns', 'exec', namespace, 'ip', 'link', 'set', 'lo', 'up');
    const orthanc = spawn('ip', ['netns', 'exec', namespace, ORTHANC_BIN, configFile], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const keep = (d: Buffer): void => {
      log = (log + d.toString()).slice(-8000);
    };
    orthanc.stdout!.on('data', keep);
    orthanc.stderr!.on('data', keep);
    entry.children.push(orthanc);

    const sock = join(dir, 'orthanc.sock');
    const relay = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', RELAY, sock, String(httpPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
    relay.stderr!.on('data', keep);
    entry.children.push(relay);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the namespace relay did not start within 10 s')), 10_000);
      relay.stdout!.once('data', () => {
        clearTimeout(t);
        resolve();
      });
      relay.once('exit', (code) => reject(new Error(`the namespace relay exited (${code})`)));
    });

    const sockets = entry.sockets;
    bridge.on('connection', (c) => {
      sockets.add(c);
      const u = connect(sock);
      c.on('error', () => u.destroy());
      u.on('error', () => c.destroy());
      c.on('close', () => sockets.delete(c));
      c.pipe(u).pipe(c);
    });
    await new Promise<void>((resolve) => bridge.listen(0, '127.0.0.1', resolve));
    const addr = bridge.address();
    const url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;

    const deadline = Date.now() + 30_000;
    for (;;) {
      if (orthanc.exitCode !== null || orthanc.signalCode !== null) throw new Error(`Orthanc exited (${orthanc.exitCode ?? orthanc.signalCode})`);
      try {
        const r = await fetch(`${url}/system`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) break;
      } catch {
        /* not yet */
      }
      if (Date.now() > deadline) throw new Error('Orthanc did not answer /system within 30 s');
      await new Promise((r) => setTimeout(r, 100));
    }

    let stopped: Promise<void> | null = null;
    const kill = async (): Promise<void> => {
      if (orthanc.exitCode !== null || orthanc.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => orthanc.once('exit', () => resolve()));
      orthanc.kill('SIGTERM'); // ip netns exec execs Orthanc: this pid is Orthanc's
      const timer = setTimeout(() => orthanc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    };
    return {
      url,
      dicomWebUrl: `${url}/dicom-web`,
      namespace,
      upload: async (p10) => {
        const r = await fetch(`${url}/instances`, { method: 'POST', headers: { 'content-type': 'application/dicom' }, body: p10 });
        const text = await r.text();
        if (!r.ok) throw new Error(`Orthanc refused the upload: ${r.status} ${text.slice(0, 300)}`);
        return (JSON.parse(text) as { ID: string }).ID;
      },
      kill,
      stop: () =>
        (stopped ??= (async () => {
          await kill();
          if (relay.exitCode === null && relay.signalCode === null) {
            const gone = new Promise<void>((resolve) => relay.once('exit', () => resolve()));
            relay.kill('SIGKILL');
            await gone;
          }
          const closed = new Promise<void>((resolve) => bridge.close(() => resolve()));
          for (const s of sockets) s.destroy();
          await closed;
          live.delete(entry);
          cleanup(entry);
        })()),
    };
  } catch (err) {
    live.delete(entry);
    cleanup(entry);
    throw new Error(`Orthanc did not start: ${(err as Error).message}\n${log.slice(-2000)}`);
  }
}
