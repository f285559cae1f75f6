/** Audit: the tail of the coordinator's audit log and its integrity, once a coordinator serves GET /v1/audit. */
import { badge, byId, fill, h, table } from '../dom.js';
import { on, state } from '../state.js';

export function initAudit(): void {
  on(['audit'], render);
}

function render(): void {
  const root = byId('view-audit');
  const a = state.audit;
  if (!a) return fill(root, h('h2', {}, 'Audit log'), h('p', { class: 'muted' }, 'Loading…'));
  if (!a.available) return fill(root, h('h2', {}, 'Audit log'), h('p', { id: 'audit-unavailable', class: 'note' }, 'The audit log is not available on this coordinator yet.'));
  const keys = [...new Set(a.entries.flatMap((e) => Object.keys(e)))].slice(0, 8);
  fill(
    root,
    h('h2', {}, 'Audit log'),
    h('p', { id: 'audit-integrity' }, 'Integrity: ', a.integrity.ok === null ? badge('unknown', 'warn') : a.integrity.ok ? badge('verified', 'ok') : badge('BROKEN', 'bad'), ' ', a.integrity.message),
    table(`The last ${a.entries.length} entries`, keys, [...a.entries].reverse().map((e) => keys.map((k) => text(e[k])))),
  );
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v).slice(0, 300) : String(v).slice(0, 300);
}
