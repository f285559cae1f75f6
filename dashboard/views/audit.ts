/** Audit: the tail of the coordinator's audit log (GET /v1/audit, admin only) and its integrity. */
import { badge, byId, fill, h, table } from '../dom.js';
import { on, state } from '../state.js';

/** The coordinator's entry fields, in the order shown (prev is left out: it is the line above's hash). */
const ENTRY_COLUMNS = ['seq', 'at', 'actor', 'action', 'subject', 'details', 'hash'];

export function initAudit(): void {
  on(['audit'], render);
}

function render(): void {
  const root = byId('view-audit');
  const a = state.audit;
  if (!a) return fill(root, h('h2', {}, 'Audit log'), h('p', { class: 'muted' }, 'Loading…'));
  if (!a.available) return fill(root, h('h2', {}, 'Audit log'), h('p', { id: 'audit-unavailable', class: 'note' }, 'The audit log is not available on this coordinator yet.'));
  const chained = a.entries.length > 0 && a.entries.every((e) => 'seq' in e || 'unparseable' in e);
  const keys = chained ? ENTRY_COLUMNS : [...new Set(a.entries.flatMap((e) => Object.keys(e)))].slice(0, 8);
  fill(
    root,
    h('h2', {}, 'Audit log'),
    h('p', { id: 'audit-integrity' }, 'Integrity: ', a.integrity.ok === null ? badge('unknown', 'warn') : a.integrity.ok ? badge('verified', 'ok') : badge('BROKEN', 'bad'), ' ', a.integrity.message),
    table(`The last ${a.entries.length} entries`, keys, [...a.entries].reverse().map((e) => ('unparseable' in e ? keys.map((k, i) => (i === 0 ? `line ${text(e.line)}` : k === 'action' ? '(not an entry)' : k === 'details' ? text(e.unparseable) : '')) : keys.map((k) => cell(k, e[k]))))),
  );
}

function cell(key: string, v: unknown): string {
  if (key === 'hash' && typeof v === 'string') return `${v.slice(0, 12)}…`;
  if (key === 'actor' && v && typeof v === 'object') {
    const a = v as { kind?: unknown; id?: unknown; role?: unknown; site?: unknown };
    if (a.kind === 'token') return `token ${String(a.id).slice(0, 8)} (${String(a.role)})`;
    if (a.kind === 'site') return `site ${String(a.site)}`;
    if (a.kind === 'coordinator') return 'coordinator';
  }
  if (key === 'details' && v && typeof v === 'object' && Object.keys(v).length === 0) return '';
  return text(v);
}

function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v).slice(0, 300) : String(v).slice(0, 300);
}
