/**
 * Deployment: the current and canary version, what each site runs, the version the gate held
 * back and why, OTA bytes per site, the action log. Admins and deployers publish (to all sites
 * or a canary), promote and roll back here.
 */
import { post } from '../api.js';
import { badge, byId, fill, fmtBytes, fmtPct, h, shortId, table, timeAgo, versionTag } from '../dom.js';
import { can, load, on, state } from '../state.js';

export function initDeployment(): void {
  const root = byId('view-deployment');
  fill(root, h('h2', {}, 'Deployment'), h('div', { id: 'deployment-actions' }), h('div', { id: 'deployment-body' }));
  on(['who', 'versions', 'selection', 'sites', 'deployment'], renderActions);
  on(['deployment', 'experiments'], render);
}

function render(): void {
  const d = state.deployment;
  const body = byId('deployment-body');
  if (!d) return fill(body, h('p', { class: 'muted' }, 'Loading…'));
  const held = d.held;
  const gate = d.lastGate;
  fill(
    body,
    h(
      'dl',
      { class: 'facts', id: 'deployment-facts' },
      h('dt', {}, 'current version'),
      h('dd', { id: 'deployment-current', 'data-version': d.current ?? '' }, versionTag(d.current), d.currentRelease ? ` (release ${d.currentRelease})` : ''),
      h('dt', {}, 'canary'),
      h('dd', { id: 'deployment-canary', 'data-version': d.canary?.version ?? '' }, d.canary ? [versionTag(d.canary.version), ` at ${d.canary.sites.join(', ')}`] : h('span', { class: 'muted' }, 'none')),
      h('dt', {}, 'earlier versions'),
      h('dd', {}, d.previous.length ? [...d.previous].reverse().slice(0, 5).map((v) => [versionTag(v), ' ']) : h('span', { class: 'muted' }, 'none')),
      h('dt', {}, 'held back'),
      h('dd', { id: 'deployment-held' }, held ? [versionTag(held.version), ` (round ${held.round}): ${held.reason}`] : h('span', { class: 'muted' }, 'nothing')),
      h('dt', {}, 'last gate decision'),
      h('dd', {}, gate ? [badge(gate.decision, gate.decision === 'deployed' ? 'ok' : 'warn'), ' ', versionTag(gate.version), ` accuracy ${fmtPct(gate.accuracy)} over ${gate.sites} site(s) vs ${gate.baseline ? `${fmtPct(gate.baseline.accuracy)} (${gate.baseline.version ? shortId(gate.baseline.version) : 'chance'})` : '–'}: ${gate.reason}`] : h('span', { class: 'muted' }, 'none yet')),
    ),
    table(
      'What each site runs',
      ['site', 'should run', 'runs', 'last report', 'last refusal or rollback', 'OTA bytes sent'],
      d.sites.map((s) => [
        s.site,
        versionTag(s.target),
        h('span', { 'data-site': s.site, class: 'site-active', 'data-version': s.active ?? '' }, versionTag(s.active), s.active && s.active === s.target ? ' ' : '', s.active && s.active === s.target ? badge('up to date', 'ok') : s.target ? ' ' : '', s.target && s.active !== s.target ? badge('pending', 'warn') : ''),
        s.lastReport ? [badge(s.lastReport.status, s.lastReport.status === 'active' ? 'ok' : s.lastReport.status === 'downloading' ? 'live' : 'warn'), ' ', versionTag(s.lastReport.version), s.lastReport.reason ? `: ${s.lastReport.reason}` : '', ' ', timeAgo(s.lastReport.at)] : h('span', { class: 'muted' }, 'none'),
        s.lastRefusal ? [badge(s.lastRefusal.status, 'bad'), ' ', versionTag(s.lastRefusal.version), s.lastRefusal.reason ? `: ${s.lastRefusal.reason}` : ''] : h('span', { class: 'muted' }, 'none'),
        fmtBytes(d.otaBytesSent[s.site] ?? 0),
      ]),
      { id: 'deployment-sites' },
    ),
    table(
      'Deployment log (latest first)',
      ['when', 'action', 'version', 'sites', 'reason'],
      [...d.log].reverse().slice(0, 20).map((l) => [timeAgo(l.at), l.action, versionTag(l.version), l.sites?.join(', ') ?? 'all', l.reason ?? '']),
    ),
  );
}

let actions: { select: HTMLSelectElement; sites: HTMLElement; publish: HTMLButtonElement; promote: HTMLButtonElement; rollback: HTMLButtonElement } | null = null;

/** The action forms, built once per sign-in (for the roles that may use them), updated in place after. */
function renderActions(): void {
  const box = byId('deployment-actions');
  if (!can.deploy(state.who?.role)) {
    actions = null;
    return fill(box);
  }
  if (!actions || !box.contains(actions.select)) actions = buildActions(box);
  const { select, sites, publish, promote, rollback } = actions;
  const versions = (state.selected ? state.versions.get(state.selected) : undefined)?.filter((v) => !v.encrypted) ?? [];
  // (the newest version, unless the user picked one)
  const chosen = select.dataset.picked ? select.value : undefined;
  fill(select, [...versions].reverse().map((v) => h('option', { value: v.id, selected: v.id === chosen }, `round ${v.round}: ${shortId(v.id)}`)));
  publish.disabled = versions.length === 0;
  const checked = new Set([...sites.querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value));
  fill(sites, h('legend', {}, 'Canary sites (none: every site)'), [...state.sites.values()].filter((s) => !s.revoked).map((s) => h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'canary-site', value: s.name, checked: checked.has(s.name) }), ` ${s.name}`)));
  promote.disabled = !state.deployment?.canary;
  rollback.textContent = state.deployment?.canary ? 'Roll back the canary' : 'Roll back to the previous version';
}

function buildActions(box: HTMLElement): NonNullable<typeof actions> {
  const message = h('p', { id: 'deployment-action-status', role: 'status', class: 'action-status' });
  const act = async (button: HTMLButtonElement, what: string, f: () => Promise<unknown>) => {
    button.disabled = true;
    message.textContent = `${what}…`;
    message.className = 'action-status';
    try {
      await f();
      message.textContent = `${what}: done.`;
      message.className = 'action-status ok';
    } catch (err) {
      message.textContent = `${what} failed: ${(err as Error).message}`;
      message.className = 'action-status bad';
    } finally {
      button.disabled = false;
      void load.deployment();
    }
  };
  const select = h('select', { id: 'publish-version', required: true });
  select.addEventListener('change', () => (select.dataset.picked = 'yes'));
  const sites = h('fieldset', { class: 'canary-sites' });
  const publish = h('button', { id: 'publish-button', type: 'submit' }, 'Publish');
  const form = h('form', { class: 'inline-form', 'aria-label': 'Publish a version' }, h('label', { for: 'publish-version' }, 'Version of the selected experiment'), select, sites, publish);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const chosen = [...sites.querySelectorAll<HTMLInputElement>('input:checked')].map((i) => i.value);
    void act(publish, chosen.length ? `Publishing ${shortId(select.value)} to ${chosen.join(', ')}` : `Publishing ${shortId(select.value)} to every site`, () => post('/v1/deployment/publish', { version: select.value, ...(chosen.length ? { sites: chosen } : {}) }));
  });
  const promote = h('button', { id: 'promote-button', type: 'button' }, 'Promote canary');
  promote.addEventListener('click', () => act(promote, 'Promoting the canary', () => post('/v1/deployment/promote')));
  const rollback = h('button', { id: 'rollback-button', type: 'button', class: 'danger' }, 'Roll back');
  rollback.addEventListener('click', () => act(rollback, 'Rolling back', () => post('/v1/deployment/rollback', {})));
  fill(box, form, h('div', { class: 'button-row' }, promote, rollback), message);
  return { select, sites, publish, promote, rollback };
}
