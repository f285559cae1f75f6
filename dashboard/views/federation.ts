/** Federation: every site, online or not, last seen, certificate and revocation, the version it runs, its labelled data, pending approvals and refusals. */
import { badge, byId, fill, h, table, timeAgo, versionTag, type Child } from '../dom.js';
import { on, state } from '../state.js';
import type { Site } from '../types.js';

export function initFederation(): void {
  on(['sites', 'deployment', 'rounds', 'experiments'], render);
}

/** Ready or not by the site's own minimum, and its labelled examples as its policy releases them. */
function readiness(s: Site): Child {
  const d = s.data;
  if (!d) return h('span', { class: 'muted' }, 'not reported');
  const counts = d.examples ? `${d.examples.train} train · ${d.examples.validation} val · ${d.examples.test} test${d.release === 'bucketed' ? ' (rounded down)' : ''}` : 'counts withheld by the site';
  const b = d.ready ? badge('ready', 'ok', `at least the site's minimum of ${d.minExamples} training examples`) : badge('not ready', 'warn', `fewer than the site's minimum of ${d.minExamples} training examples`);
  return h('span', { 'data-ready': String(d.ready) }, b, ' ', h('small', {}, counts));
}

function render(): void {
  const root = byId('view-federation');
  const sites = [...state.sites.values()];
  const running = new Map((state.deployment?.sites ?? []).map((s) => [s.site, s]));
  const online = sites.filter((s) => s.online).length;
  const expName = (id: string) => state.experiments.get(id)?.name ?? id;

  const rows: Child[][] = sites.map((s) => {
    const d = running.get(s.name);
    return [
      h('span', { class: 'site-name' }, s.name),
      s.online ? badge('online', 'ok', 'connected and authenticated now') : badge('offline', 'off'),
      timeAgo(s.lastSeen),
      !s.enrolled ? badge('not enrolled', 'warn') : s.revoked ? badge('revoked', 'bad') : s.certified ? badge('certified', 'ok', s.fingerprint ?? undefined) : badge('uncertified', 'warn', s.uncertifiedReason ?? undefined),
      s.certified || !s.uncertifiedReason ? '' : h('small', {}, s.uncertifiedReason),
      d ? versionTag(d.active) : h('span', { class: 'muted' }, '–'),
      String(s.roundsJoined),
      readiness(s),
    ];
  });
  for (const [i, s] of sites.entries()) rows[i].push(s.pendingApproval.length ? s.pendingApproval.map((e) => h('div', {}, badge('awaiting approval', 'warn'), ' ', expName(e))) : h('span', { class: 'muted' }, '–'));

  const refusals = sites.flatMap((s) => s.refusals.map((r) => ({ site: s.name, ...r })));
  // Refusals and failures in the latest round of each experiment (a withheld evaluation shows only there).
  const roundRefusals = [...state.rounds.values()].flatMap((list) => {
    const last = list[list.length - 1];
    return last ? last.sites.filter((x) => x.refused || ((x.status === 'failed' || x.status === 'dropped') && x.reason)).map((x) => ({ ...x, experiment: last.experiment, round: last.round })) : [];
  });

  const table1 = table(`Sites: ${online} of ${sites.length} online`, ['site', 'connection', 'last seen', 'certificate', 'why not certified', 'running version', 'rounds joined', 'labelled data', 'pending approvals'], rows, { id: 'sites-table' });
  table1.querySelectorAll('tbody tr').forEach((tr, i) => sites[i] && tr.setAttribute('data-site', sites[i].name));
  fill(
    root,
    h('h2', {}, 'Federation'),
    table1,
    table(
      'Refusals recorded per site (latest per experiment)',
      ['site', 'experiment', 'round', 'kind', 'reason', 'when', 'since'],
      refusals.map((r) => [r.site, expName(r.experiment), String(r.round), badge(r.kind, r.kind === 'approval_pending' ? 'warn' : 'bad'), r.reason, timeAgo(r.at), r.supersededInRound ? `took part again in round ${r.supersededInRound}` : h('span', { class: 'muted' }, 'still refusing')]),
      { id: 'refusals-table' },
    ),
    table(
      'Refusals, failures and dropouts in the latest round of each experiment',
      ['site', 'experiment', 'round', 'phase', 'status', 'reason'],
      roundRefusals.map((r) => [r.site, expName(r.experiment), String(r.round), r.phase === 'fit' ? 'training' : 'evaluation', r.refused ? badge(`refused: ${r.refused}`, 'bad') : badge(r.status, 'bad'), r.reason ?? '']),
    ),
  );
}
