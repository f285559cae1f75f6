/**
 * Helpers for end-to-end federation tests: the coordinator and the edges run as real child
 * processes of the `fedmed` CLI and talk over real sockets on loopback.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { TfjsModel } from '../../models/tfjsModel.js';
import { loadMedmnistNpz } from '../../edge-client/data/medmnistLoader.js';
import { evaluateModel } from '../../edge-client/training/localTrainer.js';
import { initTrainingBackend } from '../../edge-client/training/trainingBackend.js';
import { decodeParamsFile } from '../../shared/model/paramsFile.js';
import { ApiAdminTarget } from '../../cli/admin/adminTarget.js';
import { addSite, certifyCoordinator, certifySite } from '../../cli/admin/federationAdmin.js';
import { createAdminKeyFile, loadAdminKey, type AdminKey } from '../../shared/secure/trust/adminKey.js';
import { CLI } from './paths.js';
import { runCli } from './runCli.js';

export interface Proc {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = typeof a === 'object' && a ? a.port : 0;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000, everyMs = 100): Promise<NonNullable<T>> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface CoordinatorProc extends Proc {
  url: string;
  adminToken: string;
  /** The federation admin's key (kept beside the data dir, as on an admin's machine: never in it). */
  admin: AdminKey;
}

/** The admin key of the federation a test coordinator belongs to: made once per data dir, beside it. */
export function adminKeyFor(dataDir: string): AdminKey {
  const file = `${dataDir}.admin-key.pem`;
  return existsSync(file) ? loadAdminKey(file) : createAdminKeyFile(file);
}

/**
 * Starts a coordinator process and, unless `certify: false`, does the admin's first step: the
 * admin key certifies the coordinator's key for its URL (once per data dir; a restart keeps it).
 */
export async function startCoordinator(dataDir: string, port: number, extraArgs: string[] = [], o: { certify?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<CoordinatorProc> {
  const p = spawnCli(['coordinator', 'start', '--data-dir', dataDir, '--port', String(port), '--log-level', 'warn', ...extraArgs], o.env);
  const line = await waitFor('the coordinator to listen', () => {
    if (p.child.exitCode !== null) throw new Error(`coordinator exited: ${p.output()}`);
    return p.output().split('\n').find((l) => l.includes('"event":"listening"'));
  });
  const url = (JSON.parse(line) as { url: string }).url;
  const c = { ...p, url, adminToken: readFileSync(`${dataDir}/admin.token`, 'utf8').trim(), admin: adminKeyFor(dataDir) };
  if (o.certify !== false) {
    const view = (await call<{ coordinatorCertificate: unknown }>(c, 'GET', '/v1/federation')).body;
    if (!view.coordinatorCertificate) await certifyCoordinator(new ApiAdminTarget({ url, token: c.adminToken }), c.admin);
  }
  return c;
}

/** The admin's API target for a test coordinator. */
export function adminApi(c: { url: string; adminToken: string }): ApiAdminTarget {
  return new ApiAdminTarget({ url: c.url, token: c.adminToken });
}

export async function call<T = unknown>(c: { url: string; adminToken: string }, method: string, path: string, body?: unknown, token = c.adminToken): Promise<{ status: number; body: T }> {
  const res = await fetch(new URL(path, c.url), { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as T };
}

/**
 * The whole admission of a site, as in a real federation: the admin creates it (join token),
 * the site enrols with the CLI (printing its key fingerprint), the admin certifies the keys
 * after checking that fingerprint. Returns the join token. `certify: false` stops after enrolment.
 */
export async function enrol(c: CoordinatorProc, name: string, stateDir: string, o: { certify?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<string> {
  const { token } = await addSite(adminApi(c), name, c.admin);
  const r = await runCli(['edge', 'enroll', '--coordinator', c.url, '--token', token, '--state-dir', stateDir, '--json'], { env: o.env });
  if (r.code !== 0) throw new Error(`enrol ${name} failed: ${r.stderr}`);
  if (o.certify !== false) await certifySite(adminApi(c), c.admin, name, { fingerprint: (JSON.parse(r.stdout) as { siteFingerprint: string }).siteFingerprint });
  return token;
}

export async function stopProc(p: Proc, signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
  if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill(signal);
  return p.exited;
}

/** Sites with an authenticated connection right now. */
export async function onlineSites(c: CoordinatorProc): Promise<string[]> {
  return (await call<{ name: string; online: boolean }[]>(c, 'GET', '/v1/sites')).body.filter((s) => s.online).map((s) => s.name);
}

/** Creates an experiment with the tests' usual settings (cnn-28, 2 classes, minFit 2) plus `overrides`. */
export async function createExperiment(c: CoordinatorProc, overrides: Record<string, unknown>): Promise<string> {
  const res = await call<{ id: string }>(c, 'POST', '/v1/experiments', {
    model: { zoo: 'cnn-28', numClasses: 2 },
    minFitClients: 2,
    deadlineSeconds: 60,
    fit: { epochs: 1, batchSize: 32, learningRate: 0.001, optimizer: 'adam' },
    ...overrides,
  });
  if (res.status !== 200) throw new Error(`experiment not created: ${JSON.stringify(res.body)}`);
  return res.body.id;
}

/**
 * Starts `rounds` rounds, SIGKILLs `victim` once it has started training in round `killInRound`,
 * waits for the rounds to end and returns the experiment's round records.
 */
export async function runRoundsKillingEdge<R>(c: CoordinatorProc, experiment: string, rounds: number, victim: Proc, killInRound: number): Promise<R[]> {
  const start = await call(c, 'POST', `/v1/experiments/${experiment}/rounds`, { rounds });
  if (start.status !== 200) throw new Error(`rounds not started: ${JSON.stringify(start.body)}`);
  await waitFor(`the victim to start round ${killInRound}`, () => victim.output().split('"event":"fit_started"').length > killInRound, 120_000);
  victim.child.kill('SIGKILL');
  await waitFor('the rounds to end', async () => !(await call<{ running: boolean }>(c, 'GET', `/v1/experiments/${experiment}`)).body.running, 200_000, 200);
  return (await call<R[]>(c, 'GET', `/v1/experiments/${experiment}/rounds`)).body;
}

/** Accuracy of a published version (downloaded from the API) on the test splits of the given .npz files. */
export async function versionAccuracy(c: CoordinatorProc, versionId: string, npzFiles: string[]): Promise<number> {
  const res = await fetch(new URL(`/v1/versions/${versionId}/params`, c.url), { headers: { authorization: `Bearer ${c.adminToken}` } });
  return paramsFileAccuracy(new Uint8Array(await res.arrayBuffer()), npzFiles);
}

/** Accuracy of a `.fmp` model file's bytes on the test splits of the given .npz files. */
export async function paramsFileAccuracy(bytes: Uint8Array, npzFiles: string[]): Promise<number> {
  const { spec, params } = decodeParamsFile(bytes, 'model file');
  await initTrainingBackend('wasm');
  const model = new TfjsModel(spec, params);
  let correct = 0;
  let n = 0;
  try {
    for (const file of npzFiles) {
      const m = evaluateModel(model, loadMedmnistNpz(file).test);
      correct += m.accuracy * m.numExamples;
      n += m.numExamples;
    }
  } finally {
    model.dispose();
  }
  return correct / n;
}
