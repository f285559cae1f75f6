/**
 * Metrics: global (example-weighted federated evaluation) and per-site loss, accuracy and AUC by
 * round, drawn with uPlot, with the deployed version's value as a dashed baseline. Each chart has
 * its values as a table too, and a data-points attribute (the rounds with a global value).
 */
import uPlot from '../vendor/uPlot.esm.js';
import { byId, fill, fmtNum, h, shortId } from '../dom.js';
import { on, state } from '../state.js';
import type { MetricsRow } from '../types.js';

type Metric = 'accuracy' | 'loss' | 'auc';
const METRICS: { key: Metric; title: string }[] = [
  { key: 'accuracy', title: 'Accuracy' },
  { key: 'loss', title: 'Loss' },
  { key: 'auc', title: 'AUC' },
];
const PALETTE = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];
const plots: uPlot[] = [];

export function initMetrics(): void {
  on(['metrics', 'selection', 'deployment', 'rounds'], render);
}

/** The deployed version's metrics, when a round of this experiment produced it. */
function baseline(exp: string, rows: MetricsRow[]): { label: string; values: Partial<Record<Metric, number>> } | null {
  const current = state.deployment?.current;
  const round = current ? state.rounds.get(exp)?.find((r) => r.versionId === current) : undefined;
  const row = round ? rows.find((m) => m.round === round.round) : undefined;
  if (row?.evaluate) return { label: `deployed ${shortId(current)} (round ${row.round})`, values: { accuracy: row.evaluate.accuracy, loss: row.evaluate.loss, ...(row.evaluate.auc !== null ? { auc: row.evaluate.auc } : {}) } };
  const gate = state.deployment?.lastGate;
  if (gate?.experiment === exp && gate.baseline) return { label: `gate baseline ${gate.baseline.version ? shortId(gate.baseline.version) : '(chance)'}`, values: { accuracy: gate.baseline.accuracy } };
  return null;
}

function render(): void {
  const root = byId('view-metrics');
  for (const p of plots.splice(0)) p.destroy();
  const id = state.selected;
  const rows = (id ? state.metrics.get(id) : undefined) ?? [];
  if (!id) return fill(root, h('h2', {}, 'Metrics'), h('p', { class: 'muted' }, 'Select an experiment.'));
  const evaluated = rows.filter((r) => r.evaluate).sort((a, b) => a.round - b.round);
  const sites = [...new Set(evaluated.flatMap((r) => r.sites.map((s) => s.site)))].sort();
  const base = baseline(id, rows);
  const figures = METRICS.filter((m) => m.key !== 'auc' || evaluated.some((r) => r.evaluate?.auc !== null && r.evaluate?.auc !== undefined)).map((m) => figure(m.key, m.title, evaluated, sites, base));
  fill(root, h('h2', {}, 'Metrics'), h('p', { class: 'note' }, 'Federated evaluation of each round\'s new model on the sites\' own validation data (global: example-weighted).'), h('div', { class: 'charts' }, figures));
}

function figure(metric: Metric, title: string, rows: MetricsRow[], sites: string[], base: ReturnType<typeof baseline>): HTMLElement {
  const x = rows.map((r) => r.round);
  const global = rows.map((r) => finite(r.evaluate?.[metric]));
  const perSite = sites.map((s) => rows.map((r) => finite(r.sites.find((y) => y.site === s)?.[metric])));
  const baseValue = base?.values[metric];
  const points = global.filter((v) => v !== null).length;
  const chart = h('div', { class: 'plot', role: 'img', 'aria-label': `${title} by round: ${points} round(s)` });
  const valuesTable = h(
    'table',
    { class: 'values' },
    h('caption', {}, `${title} by round`),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'round'), h('th', { scope: 'col' }, 'global'), sites.map((s) => h('th', { scope: 'col' }, s)))),
    h('tbody', {}, rows.map((r, i) => h('tr', {}, h('th', { scope: 'row' }, String(r.round)), h('td', {}, fmtNum(global[i])), perSite.map((v) => h('td', {}, fmtNum(v[i])))))),
  );
  const fig = h(
    'figure',
    { class: 'chart', 'data-metric': metric, 'data-points': points, id: `chart-${metric}` },
    h('figcaption', {}, `${title}${baseValue !== undefined && base ? ` — dashed: ${base.label} ${fmtNum(baseValue)}` : ''}`),
    chart,
    h('details', {}, h('summary', {}, 'values'), valuesTable),
  );
  if (x.length === 0) {
    chart.append(h('p', { class: 'muted' }, 'No evaluated round yet.'));
    return fig;
  }
  const series: uPlot.Series[] = [{ label: 'round' }, { label: 'global', stroke: '#111', width: 2.5, points: { show: true, size: 6 } }];
  const data: (number | null)[][] = [x, global];
  sites.forEach((s, i) => {
    series.push({ label: s, stroke: PALETTE[i % PALETTE.length], width: 1.25, points: { show: true, size: 4 } });
    data.push(perSite[i]);
  });
  if (baseValue !== undefined && base) {
    series.push({ label: base.label, stroke: '#555', dash: [6, 4], width: 1.5, points: { show: false } });
    data.push(x.map(() => baseValue));
  }
  const opts: uPlot.Options = {
    width: 580,
    height: 230,
    scales: { x: { time: false }, y: metric === 'loss' ? {} : { range: (_u, min, max) => [Math.max(0, Math.min(min, 0.4)), Math.min(1, Math.max(max, 1))] } },
    axes: [{ label: 'round', incrs: [1, 2, 5, 10, 20, 50, 100] }, { label: metric }],
    series,
    legend: { live: false },
    cursor: { show: false },
  };
  // (drawn once the figure is in the page)
  queueMicrotask(() => plots.push(new uPlot(opts, data as uPlot.AlignedData, chart)));
  return fig;
}

const finite = (v: number | null | undefined): number | null => (v === null || v === undefined || !Number.isFinite(v) ? null : v);
