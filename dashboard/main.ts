/**
 * The fedmed dashboard: sign-in with an API token, then the live views (federation, rounds,
 * metrics, privacy, deployment, audit). Everything is fetched once, then kept current by the
 * coordinator's event stream: each event refetches the one resource it concerns.
 */
import { ApiError, api, getToken, setToken, whenUnauthorized } from './api.js';
import { byId, fill, h, refreshTimes } from './dom.js';
import { connectEvents, type FeedState } from './events.js';
import { changed, liveKey, load, loadAll, on, reset, select, state } from './state.js';
import type { DashEvent, WhoAmI } from './types.js';
import { initAudit } from './views/audit.js';
import { initDeployment } from './views/deployment.js';
import { initFederation } from './views/federation.js';
import { initMetrics } from './views/metrics.js';
import { initPrivacy } from './views/privacy.js';
import { initRounds } from './views/rounds.js';

const VIEWS = ['federation', 'rounds', 'metrics', 'privacy', 'deployment', 'audit'] as const;
type View = (typeof VIEWS)[number];
let feed: { close(): void } | null = null;
/** Hellos of the event stream since sign-in: the first needs no refetch (sign-in fetched everything). */
let hellos = 0;

function showView(): void {
  const wanted = location.hash.slice(1) as View;
  const view: View = VIEWS.includes(wanted) ? wanted : 'federation';
  for (const v of VIEWS) {
    byId(`view-${v}`).hidden = v !== view;
    const link = byId(`nav-${v}`);
    if (v === view) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.body.dataset.view = view;
}

async function signIn(token: string): Promise<void> {
  const error = byId('signin-error');
  error.textContent = '';
  let who: WhoAmI;
  try {
    who = await api<WhoAmI>('GET', '/v1/whoami', undefined, token);
  } catch (err) {
    setToken(null);
    error.textContent = err instanceof ApiError && (err.status === 401 || err.status === 403) ? 'That token was not accepted: it is unknown, revoked or expired.' : `Could not sign in: ${(err as Error).message}`;
    showSignIn();
    return;
  }
  setToken(token);
  state.who = who;
  document.body.dataset.role = who.role;
  fill(byId('who'), 'Signed in as ', h('strong', {}, who.name ?? who.id), ` (${who.role})`);
  byId('signin').hidden = true;
  byId('app').hidden = false;
  showView();
  changed('who');
  feed?.close();
  hellos = 0;
  feed = connectEvents({ token: getToken, onEvent, onState, onUnauthorized: () => signOut('Your token is no longer accepted (revoked or expired): sign in again.') });
  await loadAll();
}

function showSignIn(): void {
  byId('app').hidden = true;
  byId('signin').hidden = false;
  byId<HTMLInputElement>('token').focus();
}

function signOut(message = ''): void {
  feed?.close();
  feed = null;
  setToken(null);
  reset();
  delete document.body.dataset.role;
  changed('who', 'sites', 'experiments', 'selection', 'rounds', 'live', 'metrics', 'privacy', 'deployment', 'versions', 'audit');
  byId('signin-error').textContent = message;
  byId<HTMLInputElement>('token').value = '';
  showSignIn();
}

function onState(s: FeedState): void {
  const el = byId('feed-state');
  el.dataset.state = s.state;
  state.feed = s.state;
  el.textContent = s.state === 'live' ? 'live' : s.state === 'connecting' ? 'connecting…' : `offline: ${s.reason}; retrying in ${Math.ceil(s.retryInMs / 1000)} s`;
  changed('feed');
}

function onEvent(e: DashEvent): void {
  switch (e.type) {
    case 'hello':
      // reconnected: what happened while disconnected is fetched once
      if (hellos++ > 0) void loadAll();
      return;
    case 'site': {
      const s = state.sites.get(e.site);
      if (s) {
        s.online = e.online;
        changed('sites');
      }
      void load.site(e.site);
      return;
    }
    case 'round': {
      const key = liveKey(e.experiment, e.round);
      const r = state.live.get(key) ?? { experiment: e.experiment, round: e.round, startedAt: e.at, endedAt: null, sites: new Map() };
      if (e.status !== 'started') r.endedAt = e.at;
      state.live.set(key, r);
      // (only the latest rounds are kept)
      for (const k of [...state.live.keys()].filter((k) => k.startsWith(`${e.experiment}#`) && state.live.get(k)!.round < e.round - 5)) state.live.delete(k);
      changed('live');
      void load.experiment(e.experiment);
      void load.rounds(e.experiment);
      return;
    }
    case 'phase': {
      const key = liveKey(e.experiment, e.round);
      const r = state.live.get(key) ?? { experiment: e.experiment, round: e.round, startedAt: e.at, endedAt: null, sites: new Map() };
      state.live.set(key, r);
      const phases = r.sites.get(e.site) ?? new Map();
      r.sites.set(e.site, phases);
      const before = phases.get(e.phase);
      phases.set(e.phase, { status: e.status, at: e.at, reason: e.refused ? `refused (${e.refused})${e.reason ? `: ${e.reason}` : ''}` : e.reason, seconds: e.seconds, bytes: e.bytes, startedAt: e.status === 'started' ? e.at : before?.startedAt });
      changed('live');
      return;
    }
    case 'version':
      void load.experiment(e.experiment);
      void load.versions(e.experiment);
      void load.rounds(e.experiment);
      return;
    case 'metrics':
      void load.metrics(e.experiment);
      return;
    case 'privacy':
      void load.privacy(e.experiment);
      return;
    case 'deployment':
      void load.deployment();
      return;
    case 'audit':
      void load.audit();
      return;
    case 'experiment':
      void load.experiment(e.experiment);
      return;
    case 'token':
      // (a revoked token of ours: the stream closes and the next request says 401)
      return;
  }
}

function renderPicker(): void {
  const sel = byId<HTMLSelectElement>('experiment-select');
  const list = [...state.experiments.values()];
  fill(sel, list.length ? list.map((e) => h('option', { value: e.id, selected: e.id === state.selected }, `${e.name} (${e.id})${e.running ? ' — running' : ''}`)) : h('option', { value: '' }, 'no experiment yet'));
  sel.disabled = list.length === 0;
}

function renderErrors(): void {
  const box = byId('errors');
  const errors = [...state.errors.values()];
  fill(box, errors.length ? h('ul', {}, errors.map((e) => h('li', {}, e))) : null);
  box.hidden = errors.length === 0;
}

function init(): void {
  initFederation();
  initRounds();
  initMetrics();
  initPrivacy();
  initDeployment();
  initAudit();
  on(['experiments', 'selection'], renderPicker);
  on(['feed'], renderErrors);
  byId<HTMLSelectElement>('experiment-select').addEventListener('change', (e) => select((e.target as HTMLSelectElement).value || null));
  byId('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = byId<HTMLInputElement>('token').value.trim();
    if (!token) {
      byId('signin-error').textContent = 'Paste an API token first.';
      return;
    }
    void signIn(token);
  });
  byId('signout').addEventListener('click', () => signOut('Signed out.'));
  window.addEventListener('hashchange', showView);
  setInterval(refreshTimes, 5000);
  whenUnauthorized(() => signOut('Your token is no longer accepted (revoked or expired): sign in again.'));
  const saved = getToken();
  if (saved) void signIn(saved);
  else showSignIn();
}

init();
