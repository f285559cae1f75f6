/**
 * What the dashboard knows, fetched from the REST API once at sign-in (and after a reconnect),
 * then resource by resource as events say it changed. Views subscribe to the topics they show.
 */
import { ApiError, get } from './api.js';
import type { DeploymentView, Experiment, MetricsRow, Phase, PhaseStatus, Privacy, Role, RoundRecord, Site, Version, WhoAmI } from './types.js';

export type Topic = 'who' | 'sites' | 'experiments' | 'selection' | 'rounds' | 'live' | 'metrics' | 'privacy' | 'deployment' | 'versions' | 'audit' | 'feed';

export interface PhaseState {
  status: PhaseStatus;
  at: number;
  reason?: string;
  seconds?: number;
  bytes?: number;
  /** When it was started (for the elapsed time of a running phase). */
  startedAt?: number;
}

/** A round as the event stream reported it. */
export interface LiveRound {
  experiment: string;
  round: number;
  startedAt: number;
  endedAt: number | null;
  sites: Map<string, Map<Phase, PhaseState>>;
}

export type AuditState = { available: false; message: string } | { available: true; entries: Record<string, unknown>[]; integrity: { ok: boolean | null; message: string } };

export const state = {
  who: null as WhoAmI | null,
  sites: new Map<string, Site>(),
  experiments: new Map<string, Experiment>(),
  selected: null as string | null,
  rounds: new Map<string, RoundRecord[]>(),
  live: new Map<string, LiveRound>(),
  metrics: new Map<string, MetricsRow[]>(),
  privacy: new Map<string, Privacy>(),
  versions: new Map<string, Version[]>(),
  deployment: null as DeploymentView | null,
  audit: null as AuditState | null,
  feed: 'connecting' as string,
  errors: new Map<string, string>(),
};

export const liveKey = (experiment: string, round: number): string => `${experiment}#${round}`;

const listeners = new Map<Topic, Set<() => void>>();

export function on(topics: Topic[], f: () => void): void {
  for (const t of topics) {
    if (!listeners.has(t)) listeners.set(t, new Set());
    listeners.get(t)!.add(f);
  }
}

/** Calls each listener of the topics once (a listener of two changed topics runs once). */
export function changed(...topics: Topic[]): void {
  const run = new Set<() => void>();
  for (const t of topics) for (const f of listeners.get(t) ?? []) run.add(f);
  for (const f of run) {
    try {
      f();
    } catch (err) {
      console.error(err);
    }
  }
}

export const can = {
  runRounds: (role: Role | undefined): boolean => role === 'admin' || role === 'researcher',
  deploy: (role: Role | undefined): boolean => role === 'admin' || role === 'deployer',
};

/**
 * Fetches of one resource coalesced: a request for a resource already being fetched runs once
 * more after it (so the last change is never missed), never twice at the same time.
 */
const inflight = new Map<string, { again: boolean; done: Promise<void> }>();
function refetch(key: string, load: () => Promise<void>): Promise<void> {
  const running = inflight.get(key);
  if (running) {
    running.again = true;
    return running.done;
  }
  const entry = { again: false, done: Promise.resolve() };
  entry.done = (async () => {
    try {
      do {
        entry.again = false;
        try {
          await load();
          if (state.errors.delete(key)) changed('feed');
        } catch (err) {
          if (err instanceof ApiError && err.status === 401) return;
          state.errors.set(key, `${key}: ${(err as Error).message}`);
          changed('feed');
        }
      } while (entry.again);
    } finally {
      inflight.delete(key);
    }
  })();
  inflight.set(key, entry);
  return entry.done;
}

export const load = {
  sites: () =>
    refetch('sites', async () => {
      const list = await get<Site[]>('/v1/sites');
      state.sites = new Map(list.map((s) => [s.name, s]));
      changed('sites');
    }),
  site: (name: string) =>
    refetch(`site ${name}`, async () => {
      try {
        state.sites.set(name, await get<Site>(`/v1/sites/${encodeURIComponent(name)}`));
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
        state.sites.delete(name);
      }
      changed('sites');
    }),
  experiments: () =>
    refetch('experiments', async () => {
      const list = await get<Experiment[]>('/v1/experiments');
      state.experiments = new Map(list.map((e) => [e.id, e]));
      if (!state.selected || !state.experiments.has(state.selected)) select(list[list.length - 1]?.id ?? null);
      changed('experiments');
    }),
  experiment: (id: string) =>
    refetch(`experiment ${id}`, async () => {
      const known = state.experiments.has(id);
      state.experiments.set(id, await get<Experiment>(`/v1/experiments/${encodeURIComponent(id)}`));
      if (!known && !state.selected) select(id);
      changed('experiments');
      if (!known) void Promise.all([load.rounds(id), load.metrics(id), load.privacy(id)]);
    }),
  rounds: (id: string) =>
    refetch(`rounds ${id}`, async () => {
      state.rounds.set(id, await get<RoundRecord[]>(`/v1/experiments/${encodeURIComponent(id)}/rounds`));
      changed('rounds');
    }),
  metrics: (id: string) =>
    refetch(`metrics ${id}`, async () => {
      state.metrics.set(id, await get<MetricsRow[]>(`/v1/experiments/${encodeURIComponent(id)}/metrics`));
      changed('metrics');
    }),
  privacy: (id: string) =>
    refetch(`privacy ${id}`, async () => {
      state.privacy.set(id, await get<Privacy>(`/v1/experiments/${encodeURIComponent(id)}/privacy`));
      changed('privacy');
    }),
  versions: (id: string) =>
    refetch(`versions ${id}`, async () => {
      state.versions.set(id, await get<Version[]>(`/v1/experiments/${encodeURIComponent(id)}/versions`));
      changed('versions');
    }),
  deployment: () =>
    refetch('deployment', async () => {
      state.deployment = await get<DeploymentView>('/v1/deployment');
      changed('deployment');
    }),
  audit: () =>
    refetch('audit', async () => {
      state.audit = await loadAudit();
      changed('audit');
    }),
};

/** GET /v1/audit when a coordinator has it: the log's tail and whether its hash chain verifies. */
async function loadAudit(): Promise<AuditState> {
  let body: unknown;
  try {
    body = await get<unknown>('/v1/audit');
  } catch (err) {
    if (err instanceof ApiError && (err.status === 404 || err.status === 405 || err.status === 501)) return { available: false, message: 'The audit log is not available on this coordinator yet.' };
    throw err;
  }
  const b = (body ?? {}) as Record<string, unknown>;
  const entries = (Array.isArray(body) ? body : Array.isArray(b.entries) ? b.entries : Array.isArray(b.tail) ? b.tail : []) as Record<string, unknown>[];
  const raw = (b.integrity ?? b.verified ?? b.chain ?? null) as unknown;
  let integrity: { ok: boolean | null; message: string };
  if (typeof raw === 'boolean') integrity = { ok: raw, message: raw ? 'the hash chain verifies' : 'the hash chain does NOT verify' };
  else if (raw && typeof raw === 'object') {
    const r = raw as { ok?: unknown; valid?: unknown; message?: unknown; reason?: unknown };
    const ok = typeof r.ok === 'boolean' ? r.ok : typeof r.valid === 'boolean' ? r.valid : null;
    integrity = { ok, message: String(r.message ?? r.reason ?? (ok === null ? 'unknown' : ok ? 'the hash chain verifies' : 'the hash chain does NOT verify')) };
  } else integrity = { ok: null, message: 'the coordinator did not report an integrity check' };
  return { available: true, entries: entries.slice(-50), integrity };
}

export function select(id: string | null): void {
  if (state.selected === id) return;
  state.selected = id;
  if (id) void load.versions(id);
  changed('selection');
}

/** Everything once (at sign-in and after the event stream reconnects: events may have been missed). */
export async function loadAll(): Promise<void> {
  await Promise.all([load.sites(), load.experiments(), load.deployment(), load.audit()]);
  await Promise.all([...state.experiments.keys()].flatMap((id) => [load.rounds(id), load.metrics(id), load.privacy(id)]));
  if (state.selected) await load.versions(state.selected);
}

export function reset(): void {
  state.who = null;
  state.sites.clear();
  state.experiments.clear();
  state.selected = null;
  state.rounds.clear();
  state.live.clear();
  state.metrics.clear();
  state.privacy.clear();
  state.versions.clear();
  state.deployment = null;
  state.audit = null;
  state.errors.clear();
}
