/**
 * report.html: one self-contained page (no network: uPlot's script and style are inlined, the
 * data is embedded as JSON) with the results table, the round-by-round plots — global and
 * per-site accuracy/AUC, ε, bytes — and each run's rounds with their dropouts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { SimulationReport } from './simulationReport.js';

const require = createRequire(import.meta.url);

function asset(path: string): string {
  return readFileSync(require.resolve(path), 'utf8');
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const pct = (x: number | null | undefined) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : (100 * x).toFixed(1));
const num = (x: number | null | undefined, digits = 3) => (x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits));

/** The results table: baselines and runs, accuracy per site and averaged. */
function resultsTable(r: SimulationReport): string {
  const sites = r.sites.length <= 12 ? r.sites.map((s) => s.name) : [];
  const head = `<tr><th>model</th>${sites.map((s) => `<th>${escapeHtml(s)}</th>`).join('')}<th>mean over sites</th><th>all test data: accuracy</th><th>AUC</th></tr>`;
  const rows: string[] = [];
  const row = (name: string, perSite: Record<string, { accuracy: number }> | undefined, mean: number | null, pooled?: { accuracy: number; auc: number | null }, note = '') =>
    rows.push(`<tr><td>${escapeHtml(name)}${note ? ` <small>${escapeHtml(note)}</small>` : ''}</td>${sites.map((s) => `<td>${pct(perSite?.[s]?.accuracy)}</td>`).join('')}<td><b>${pct(mean)}</b></td><td>${pct(pooled?.accuracy)}</td><td>${num(pooled?.auc)}</td></tr>`);
  const b = r.baselines;
  if (b.pooled) row('pooled (centralised)', b.pooled.perSite, b.pooled.meanAccuracy, b.pooled.pooledTest);
  if (b.local) {
    row('local only', b.local.perSite, b.local.meanAccuracy, undefined, 'each site on its own test split');
    if (b.local.best) row(`best local (${b.local.best.site})`, undefined, b.local.best.meanAccuracy, undefined, 'its mean over all sites\' test splits');
  }
  for (const run of r.runs) row(run.label, run.final?.perSite, run.final?.meanAccuracy ?? null, run.final?.pooledTest);
  return `<table class="results"><thead>${head}</thead><tbody>${rows.join('')}</tbody></table><p class="note">Accuracy in %, on each site's own test split; "mean over sites" is their unweighted mean (as FLamby reports).</p>`;
}

function roundsTable(run: SimulationReport['runs'][number]): string {
  const rows = run.rounds.map(
    (x) =>
      `<tr><td>${x.round}</td><td class="${x.status}">${x.status}</td><td>${pct(x.global?.accuracy)}</td><td>${num(x.global?.auc)}</td><td>${num(x.epsilon, 2)}</td><td>${((x.bytesSent + x.bytesReceived) / 2 ** 20).toFixed(2)}</td><td>${Math.round(x.timings.totalMs ?? 0)}</td><td>${escapeHtml(
        [x.reason, ...x.dropouts.map((d) => `${d.site} ${d.status} in ${d.phase}: ${d.reason}`)].filter(Boolean).join('; ').slice(0, 600),
      )}</td></tr>`,
  );
  return `<details><summary>${escapeHtml(run.label)}: ${run.rounds.filter((x) => x.status === 'completed').length} rounds completed, ${run.coordinatorRestarts} coordinator restart(s), ${run.wallSeconds.toFixed(1)} s</summary><table><thead><tr><th>round</th><th>status</th><th>accuracy</th><th>AUC</th><th>ε</th><th>MB</th><th>ms</th><th>reason / dropouts</th></tr></thead><tbody>${rows.join('')}</tbody></table></details>`;
}

/** Series for the plots, computed here so the page's script only draws. */
function chartData(r: SimulationReport) {
  const maxRound = Math.max(1, ...r.runs.flatMap((run) => run.rounds.map((x) => x.round)));
  const rounds = Array.from({ length: maxRound }, (_, i) => i + 1);
  const byRound = (run: SimulationReport['runs'][number], f: (x: SimulationReport['runs'][number]['rounds'][number]) => number | null | undefined) =>
    rounds.map((n) => {
      const x = run.rounds.find((y) => y.round === n);
      const v = x ? f(x) : null;
      return v === undefined || v === null || !Number.isFinite(v) ? null : v;
    });
  const charts: { id: string; title: string; yLabel: string; x: number[]; series: { label: string; values: (number | null)[] }[] }[] = [];
  charts.push({ id: 'accuracy', title: 'Global accuracy (federated evaluation, example-weighted) by round', yLabel: 'accuracy', x: rounds, series: r.runs.map((run) => ({ label: run.label, values: byRound(run, (x) => x.global?.accuracy) })) });
  if (r.runs.some((run) => run.rounds.some((x) => x.global?.auc !== null && x.global?.auc !== undefined))) {
    charts.push({ id: 'auc', title: 'Global AUC (federated evaluation) by round', yLabel: 'AUC', x: rounds, series: r.runs.map((run) => ({ label: run.label, values: byRound(run, (x) => x.global?.auc) })) });
  }
  for (const [k, run] of r.runs.entries()) {
    const names = r.sites.map((s) => s.name);
    const series =
      names.length <= 12
        ? names.map((site) => ({ label: site, values: byRound(run, (x) => x.sites.find((s) => s.site === site)?.accuracy) }))
        : (['min', 'mean', 'max'] as const).map((stat) => ({
            label: `${stat} over sites`,
            values: byRound(run, (x) => {
              const a = x.sites.map((s) => s.accuracy).filter((v): v is number => v !== undefined);
              if (!a.length) return null;
              return stat === 'min' ? Math.min(...a) : stat === 'max' ? Math.max(...a) : a.reduce((p, q) => p + q, 0) / a.length;
            }),
          }));
    charts.push({ id: `sites-${k}`, title: `${run.label}: accuracy of each site (own test split) by round`, yLabel: 'accuracy', x: rounds, series });
  }
  if (r.runs.some((run) => run.rounds.some((x) => x.epsilon !== null))) {
    charts.push({ id: 'epsilon', title: 'Privacy spent (ε) by round', yLabel: 'ε', x: rounds, series: r.runs.map((run) => ({ label: run.label, values: byRound(run, (x) => x.epsilon) })) });
  }
  charts.push({ id: 'bytes', title: 'Coordinator traffic per round (sent + received)', yLabel: 'MB', x: rounds, series: r.runs.map((run) => ({ label: run.label, values: byRound(run, (x) => (x.bytesSent + x.bytesReceived) / 2 ** 20) })) });
  return charts;
}

export function renderReportHtml(r: SimulationReport): string {
  const charts = chartData(r);
  const json = JSON.stringify(charts).replace(/</g, '\\u003c');
  const privacy = r.config.privacy ? `, differential privacy ${r.config.privacy.mode}` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(r.name)} — fedmed simulation</title>
<style>${asset('uplot/dist/uPlot.min.css')}
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}
h1{font-size:22px;margin-bottom:4px} .meta{color:#555} table{border-collapse:collapse;margin:8px 0 4px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} td:first-child,th:first-child{text-align:left}
.results td b{color:#000} .note{color:#666;font-size:12px;margin-top:2px} figure{margin:18px 0}
figcaption{font-weight:600;margin-bottom:4px} .failed,.aborted{color:#b00} details{margin:6px 0} summary{cursor:pointer}
</style></head><body>
<h1>${escapeHtml(r.name)}</h1>
<p class="meta">${escapeHtml(r.data)}.<br>Model ${escapeHtml(r.model.name)} (${r.model.parameters.toLocaleString('en')} parameters); ${r.config.rounds} rounds of ${r.config.fit.steps !== undefined ? `${r.config.fit.steps} local steps` : `${r.config.fit.epochs} local epoch(s)`}, batch ${r.config.fit.batchSize}, ${r.config.fit.optimizer} lr ${r.config.fit.learningRate}; fraction fit ${r.config.fractionFit}; security ${r.config.security}${privacy}; seed ${r.seed}.<br>
${r.sites.length} sites over ${r.environment.transport === 'ws' ? 'WebSockets on loopback' : 'the in-memory transport'} in ${r.environment.workers} worker thread(s); ${r.wallSeconds.toFixed(1)} s wall, peak RSS ${r.peakRssMb} MB; ${escapeHtml(r.environment.node)} on ${r.environment.cpus} CPUs; ${escapeHtml(r.createdAt)}.</p>
<h2>Results</h2>
${resultsTable(r)}
<h2>By round</h2>
<div id="charts">${charts.map((c) => `<figure class="chart" id="chart-${c.id}"><figcaption>${escapeHtml(c.title)}</figcaption><div class="plot"></div></figure>`).join('\n')}</div>
<h2>Rounds</h2>
${r.runs.map(roundsTable).join('\n')}
<script>${asset('uplot/dist/uPlot.iife.min.js')}</script>
<script>
const charts = ${json};
const palette = ['#1f77b4','#d62728','#2ca02c','#ff7f0e','#9467bd','#8c564b','#e377c2','#7f7f7f','#bcbd22','#17becf','#393b79','#637939'];
for (const c of charts) {
  const el = document.querySelector('#chart-' + c.id + ' .plot');
  const opts = {
    width: Math.min(1050, document.body.clientWidth - 20), height: 260,
    scales: { x: { time: false } },
    axes: [{ label: 'round' }, { label: c.yLabel }],
    series: [{ label: 'round' }].concat(c.series.map((s, i) => ({ label: s.label, stroke: palette[i % palette.length], width: 2, spanGaps: true, points: { show: c.x.length <= 40 } }))),
  };
  new uPlot(opts, [c.x].concat(c.series.map((s) => s.values)), el);
}
</script>
</body></html>
`;
}

export function writeReportHtml(path: string, report: SimulationReport): void {
  writeFileSync(path, renderReportHtml(report));
}
