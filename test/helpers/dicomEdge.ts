/**
 * A real `fedmed edge start` child process with a DICOM source, for the edge's DICOM e2e tests:
 * a site enrolled with a test coordinator, a clinician token for its inference service's case
 * routes, and a small client for them that keeps every answer body (for PHI checks).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CaseRecord, CaseStats } from '../../edge-client/cases/caseStore.js';
import { enrol, freePort, spawnCli, stopProc, waitFor, type CoordinatorProc, type Proc } from './federation.js';
import { runCli } from './runCli.js';

export interface DicomSite {
  stateDir: string;
  /** A clinician token of the edge's inference service. */
  token: string;
}

/** Enrols `name` with the coordinator in `stateDir` and makes a clinician token. */
export async function enrolDicomSite(coord: CoordinatorProc, name: string, stateDir: string): Promise<DicomSite> {
  await enrol(coord, name, stateDir);
  const token = await runCli(['edge', 'token', 'create', '--state-dir', stateDir, '--role', 'clinician', '--name', `${name}-radiology`]);
  assert.equal(token.code, 0, token.stderr);
  return { stateDir, token: token.stdout.trim() };
}

export interface DicomEdge {
  proc: Proc;
  servePort: number;
  /** Every answer body of `api`, for PHI checks. */
  answers: string[];
  api(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown>; text: string }>;
  /** All cases (newest first) and the store's stats, from GET /v1/cases. */
  cases(): Promise<{ cases: CaseRecord[]; stats: CaseStats }>;
  /** The site's pseudonym key (STATE_DIR/cases/pseudonym.key). */
  pseudonymKey(): Buffer;
  /** Log lines (JSON) with this event. */
  events(event: string): Record<string, unknown>[];
  stop(): Promise<number | null>;
}

/**
 * Starts `fedmed edge start --state-dir … --serve-port <free> …args` and waits until its case
 * routes answer (and, when given, until `readyEvent` is logged).
 */
export async function startDicomEdge(site: DicomSite, args: string[], o: { readyEvent?: string; answers?: string[] } = {}): Promise<DicomEdge> {
  const servePort = await freePort();
  const proc = spawnCli(['edge', 'start', '--state-dir', site.stateDir, '--serve-port', String(servePort), ...args]);
  const answers = o.answers ?? [];
  const api: DicomEdge['api'] = async (method, path, body) => {
    const res = await fetch(`http://127.0.0.1:${servePort}${path}`, { method, headers: { authorization: `Bearer ${site.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    answers.push(text);
    return { status: res.status, text, body: text && res.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {} };
  };
  const edge: DicomEdge = {
    proc,
    servePort,
    answers,
    api,
    cases: async () => {
      const r = await api('GET', '/v1/cases?limit=1000');
      assert.equal(r.status, 200, r.text);
      return r.body as unknown as { cases: CaseRecord[]; stats: CaseStats };
    },
    pseudonymKey: () => readFileSync(join(site.stateDir, 'cases', 'pseudonym.key')),
    events: (event) => proc.output().split('\n').filter((l) => l.includes(`"event":"${event}"`)).map((l) => JSON.parse(l) as Record<string, unknown>),
    stop: () => stopProc(proc),
  };
  try {
    await waitFor('the edge inference service', async () => {
      if (proc.child.exitCode !== null) throw new Error(`the edge exited (${proc.child.exitCode}): ${proc.output().slice(-3000)}`);
      try {
        return (await fetch(`http://127.0.0.1:${servePort}/v1/cases?limit=1`, { headers: { authorization: `Bearer ${site.token}` } })).status === 200;
      } catch {
        return false;
      }
    }, 60_000, 100);
    if (o.readyEvent) await waitFor(`"${o.readyEvent}" in the edge log`, () => proc.output().includes(`"event":"${o.readyEvent}"`), 30_000);
  } catch (err) {
    await stopProc(proc);
    throw new Error(`${(err as Error).message}; the edge's output ends: ${proc.output().slice(-3000)}`);
  }
  return edge;
}

/** Where any of `secrets` appears in `sources` ("what: secret"), for a PHI check. */
export function leaksOf(secrets: string[], sources: { what: string; text: string }[]): string[] {
  return sources.flatMap((s) => secrets.filter((x) => s.text.includes(x)).map((x) => `${s.what}: ${x}`));
}
