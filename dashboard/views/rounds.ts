/**
 * Experiments and rounds: the selected experiment, its rounds, and per site the phase each is
 * in (live from the event stream, merged with the round records), timings, dropouts, bytes.
 * Researchers and admins start and stop rounds here.
 */
import { post } from '../api.js';
import { badge, byId, fill, fmtBytes, fmtPct, fmtSeconds, h, table, timeAgo, versionTag, type Child } from '../dom.js';
import { can, liveKey, load, on, state, type PhaseState } from '../state.js';
import { PHASES, type Phase, type RoundRecord } from '../types.js';

const PHASE_LABEL: Record<Phase, string> = { training: 'training', key_exchange: 'key exchange', masked_input: 'masked input', unmask: 'unmask', evaluation: 'evaluation' };
const SECURE_PHASES: Phase[] = ['key_exchange', 'masked_input', 'unmask'];

export function initRounds(): void {
  const root = byId('view-rounds');
  fill(
    root,
    h('h2', {}, 'Experiments and rounds'),
    h('div', { id: 'experiment-summary' }),
    h('div', { id: 'round-actions' }),
    h('p', { id: 'round-progress', role: 'status', 'aria-live': 'polite', class: 'progress' }, 'No round yet.'),
    h('div', { id: 'round-grid' }),
    h('div', { id: 'round-history' }),
  );
  on(['who'], renderActions);
  on(['experiments', 'selection', 'rounds', 'live', 'sites'], render);
}

function renderActions(): void {
  const box = byId('round-actions');
  if (!can.runRounds(state.who?.role)) return fill(box);
  const count = h('input', { id: 'rounds-count', type: 'number', min: 1, max: 10000, value: 1, required: true, inputmode: 'numeric' });
  const message = h('p', { id: 'round-action-status', role: 'status', class: 'action-status' });
  const act = async (button: HTMLButtonElement, what: string, f: (id: string) => Promise<string>) => {
    const id = state.selected;
    if (!id) return void (message.textContent = 'Select an experiment first.');
    button.disabled = true;
    message.textContent = `${what}…`;
    try {
      message.textContent = await f(id);
      message.className = 'action-status ok';
    } catch (err) {
      message.textContent = `${what} failed: ${(err as Error).message}`;
      message.className = 'action-status bad';
    } finally {
      button.disabled = false;
    }
  };
  const start = h('button', { id: 'start-rounds', type: 'submit' }, 'Start rounds');
  const stop = h('button', { id: 'stop-rounds', type: 'button', class: 'secondary' }, 'Stop');
  stop.addEventListener('click', () =>
    act(stop, 'Stopping', async (id) => {
      const r = await post<{ stopped: boolean }>(`/v1/experiments/${encodeURIComponent(id)}/stop`);
      void load.experiment(id);
      return r.stopped ? 'Stopped: the running round is aborted.' : 'Nothing was running.';
    }),
  );
  const form = h('form', { class: 'inline-form', 'aria-label': 'Run rounds' }, h('label', { for: 'rounds-count' }, 'Rounds to run'), count, start, stop);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void act(start, 'Starting', async (id) => {
      const r = await post<{ firstRound: number; rounds: number }>(`/v1/experiments/${encodeURIComponent(id)}/rounds`, { rounds: Number(count.value) });
      void load.experiment(id);
      return `Started ${r.rounds} round(s) from round ${r.firstRound}.`;
    });
  });
  fill(box, form, message);
}

/** Per site and phase: what the round record says, overlaid by what the event stream said. */
function phaseGrid(exp: string, round: number, record: RoundRecord | undefined): Map<string, Map<Phase, PhaseState>> {
  const grid = new Map<string, Map<Phase, PhaseState>>();
  const cell = (site: string) => grid.get(site) ?? grid.set(site, new Map()).get(site)!;
  for (const s of record?.sites ?? []) {
    const phase: Phase = s.phase === 'fit' ? 'training' : 'evaluation';
    cell(s.site).set(phase, { status: s.status === 'sent' ? 'started' : s.status, at: 0, reason: s.refused ? `refused (${s.refused}): ${s.reason ?? ''}` : s.reason, seconds: s.seconds });
  }
  const live = state.live.get(liveKey(exp, round));
  for (const [site, phases] of live?.sites ?? []) {
    for (const [phase, p] of phases) {
      const fromRecord = cell(site).get(phase);
      // A finished record entry wins over a live "started" that arrived before it.
      if (fromRecord && fromRecord.status !== 'started' && p.status === 'started') continue;
      cell(site).set(phase, { ...fromRecord, ...p, seconds: p.seconds ?? fromRecord?.seconds, reason: p.reason ?? fromRecord?.reason });
    }
  }
  return grid;
}

function render(): void {
  const id = state.selected;
  const e = id ? state.experiments.get(id) : undefined;
  const summary = byId('experiment-summary');
  if (!id || !e) {
    fill(summary, h('p', { class: 'muted' }, state.experiments.size ? 'Select an experiment.' : 'No experiment on this coordinator yet.'));
    fill(byId('round-grid'));
    fill(byId('round-history'));
    return;
  }
  const security = String(e.config.security ?? 'plain');
  fill(
    summary,
    h(
      'dl',
      { class: 'facts' },
      h('dt', {}, 'experiment'),
      h('dd', {}, `${e.name} (${e.id})`),
      h('dt', {}, 'state'),
      h('dd', { id: 'experiment-state' }, e.running ? badge('running', 'live') : badge('idle', 'off')),
      h('dt', {}, 'rounds completed'),
      h('dd', {}, String(e.roundsCompleted)),
      h('dt', {}, 'current version'),
      h('dd', {}, versionTag(e.currentVersion)),
      h('dt', {}, 'aggregation'),
      h('dd', {}, security),
      h('dt', {}, 'deploy'),
      h('dd', {}, String(e.config.deploy ?? 'gated')),
      h('dt', {}, 'parameters'),
      h('dd', {}, e.parameters.toLocaleString()),
    ),
  );

  const records = state.rounds.get(id) ?? [];
  const liveRounds = [...state.live.values()].filter((r) => r.experiment === id);
  const latest = Math.max(0, ...records.map((r) => r.round), ...liveRounds.map((r) => r.round));
  const record = records.find((r) => r.round === latest);
  const live = state.live.get(liveKey(id, latest));
  const grid = phaseGrid(id, latest, record);
  const secure = security === 'secagg' || [...grid.values()].some((m) => SECURE_PHASES.some((p) => m.has(p)));
  const phases = PHASES.filter((p) => secure || !SECURE_PHASES.includes(p));
  const sites = [...new Set([...grid.keys()])].sort();

  // The progress line (an aria-live region: changed only when its text changes).
  const progress = byId('round-progress');
  const text = latest === 0 ? 'No round yet.' : progressText(latest, record, live?.endedAt === null, grid);
  if (progress.textContent !== text) progress.textContent = text;

  const gridBox = byId('round-grid');
  if (latest === 0) fill(gridBox);
  else {
    const head = h('tr', {}, h('th', { scope: 'col' }, 'site'), phases.map((p) => h('th', { scope: 'col' }, PHASE_LABEL[p])));
    const rows = sites.map((site) =>
      h(
        'tr',
        { 'data-site': site },
        h('th', { scope: 'row' }, site),
        phases.map((p) => {
          const c = grid.get(site)?.get(p);
          return h('td', { class: `phase ${c?.status ?? 'none'}`, 'data-site': site, 'data-phase': p, 'data-status': c?.status ?? 'none', title: c?.reason }, c ? phaseCell(c) : h('span', { class: 'muted' }, '–'));
        }),
      ),
    );
    fill(
      gridBox,
      h(
        'table',
        { id: 'phase-grid', class: 'phase-grid', 'data-experiment': id, 'data-round': latest },
        h('caption', {}, `Round ${latest}: phase of each site`),
        h('thead', {}, head),
        h('tbody', {}, rows.length ? rows : h('tr', {}, h('td', { colspan: phases.length + 1, class: 'empty' }, 'waiting for the sites…'))),
      ),
    );
  }

  fill(
    byId('round-history'),
    table(
      records.length > 50 ? `Rounds (the latest 50 of ${records.length})` : 'Rounds',
      ['round', 'status', 'started', 'duration', 'sites trained', 'sites evaluated', 'dropouts and failures', 'sent / received', 'accuracy', 'version'],
      [...records].reverse().slice(0, 50).map((r) => {
        const fit = r.sites.filter((s) => s.phase === 'fit');
        const ev = r.sites.filter((s) => s.phase === 'evaluate');
        const problems: Child[] = r.sites.filter((s) => s.status === 'dropped' || s.status === 'failed').map((s) => h('div', {}, `${s.site} ${s.status} in ${s.phase === 'fit' ? 'training' : 'evaluation'}${s.reason ? `: ${s.reason}` : ''}`));
        if (r.reason) problems.unshift(h('div', {}, r.reason));
        return [
          String(r.round),
          badge(r.status, r.status === 'completed' ? 'ok' : r.status === 'running' ? 'live' : 'bad'),
          timeAgo(r.startedAt),
          h('span', { title: timingText(r) }, fmtSeconds(r.timings.totalMs !== undefined ? r.timings.totalMs / 1000 : undefined)),
          `${fit.filter((s) => s.status === 'done').length} / ${fit.length}`,
          `${ev.filter((s) => s.status === 'done').length} / ${ev.length}`,
          problems.length ? problems : h('span', { class: 'muted' }, 'none'),
          `${fmtBytes(r.bytesSent)} / ${fmtBytes(r.bytesReceived)}`,
          fmtPct(r.evalMetrics?.accuracy),
          versionTag(r.versionId),
        ];
      }),
      { id: 'rounds-table' },
    ),
  );
}

function phaseCell(c: PhaseState): Child[] {
  const parts: Child[] = [h('span', { class: 'status' }, c.status)];
  if (c.seconds !== undefined) parts.push(h('span', { class: 'detail' }, fmtSeconds(c.seconds)));
  if (c.bytes !== undefined) parts.push(h('span', { class: 'detail' }, fmtBytes(c.bytes)));
  if (c.reason && (c.status === 'failed' || c.status === 'dropped')) parts.push(h('span', { class: 'reason' }, c.reason));
  return parts;
}

function progressText(round: number, record: RoundRecord | undefined, liveRunning: boolean, grid: Map<string, Map<Phase, PhaseState>>): string {
  const count = (p: Phase, status: string) => [...grid.values()].filter((m) => m.get(p)?.status === status).length;
  const asked = (p: Phase) => [...grid.values()].filter((m) => m.has(p)).length;
  if (record && record.status !== 'running' && !liveRunning) {
    const acc = record.evalMetrics ? `, accuracy ${fmtPct(record.evalMetrics.accuracy)}` : '';
    return `Round ${round} ${record.status}${record.reason ? ` (${record.reason})` : ''}: ${count('training', 'done')} of ${asked('training')} sites trained, ${count('evaluation', 'done')} of ${asked('evaluation')} evaluated${acc}.`;
  }
  const stage = asked('evaluation') ? `evaluation done at ${count('evaluation', 'done')} of ${asked('evaluation')} sites` : `training done at ${count('training', 'done')} of ${asked('training')} sites`;
  return `Round ${round} running: ${stage}.`;
}

function timingText(r: RoundRecord): string {
  return Object.entries(r.timings)
    .map(([k, v]) => `${k.replace(/Ms$/, '')} ${(v / 1000).toFixed(2)} s`)
    .join(', ');
}
