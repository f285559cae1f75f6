/** Privacy: ε spent per experiment (the coordinator's RDP ledger) and per-site ledger totals where reported. */
import { byId, fill, fmtNum, h, table } from '../dom.js';
import { on, state } from '../state.js';

export function initPrivacy(): void {
  on(['privacy', 'experiments', 'selection'], render);
}

function render(): void {
  const rows = [...state.experiments.values()].map((e) => {
    const p = state.privacy.get(e.id);
    const charged = p?.rounds.length ?? 0;
    return [
      h('span', { title: e.id }, e.name),
      !p ? '…' : p.enabled ? `yes (${p.mode})` : 'no',
      h('strong', { 'data-experiment': e.id, class: 'epsilon' }, !p || !p.enabled ? '–' : p.epsilon === null ? 'unknown' : fmtNum(p.epsilon, 3)),
      p?.delta === null || p?.delta === undefined ? '–' : String(p.delta),
      fmtNum(p?.noiseMultiplier, 3),
      fmtNum(p?.clip, 3),
      String(charged),
      p?.problem ?? '',
    ];
  });
  const sel = state.selected ? state.privacy.get(state.selected) : undefined;
  const selName = state.selected ? (state.experiments.get(state.selected)?.name ?? state.selected) : '';
  const perSite = sel?.sites;
  fill(
    byId('view-privacy'),
    h('h2', {}, 'Privacy'),
    table('Privacy spent (ε at the experiment\'s δ) per experiment', ['experiment', 'differential privacy', 'ε spent', 'δ', 'noise multiplier z', 'clip', 'rounds charged', 'problem'], rows, { id: 'privacy-table' }),
    sel?.enabled
      ? table(`${selName}: ε after each charged round`, ['round', 'ε so far', 'sampling rate (informational)'], sel.rounds.map((r) => [String(r.round), fmtNum(r.epsilon, 3), fmtNum(r.samplingRate, 2)]))
      : null,
    perSite
      ? table(`${selName}: per-site ledger totals`, ['site', 'ε', 'rounds'], perSite.map((s) => [s.site, fmtNum(s.epsilon, 3), s.rounds === undefined ? '–' : String(s.rounds)]))
      : h('p', { class: 'note' }, 'Each site also keeps its own ledger and refuses rounds beyond its budget; sites do not report their totals to this coordinator, so none are shown.'),
  );
}
