/** Building DOM nodes without HTML strings (nothing the API sends is ever parsed as markup). */

export type Child = Node | string | number | null | undefined | false | Child[];
type AttrValue = string | number | boolean | null | undefined | EventListener;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, AttrValue> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(typeof c === 'number' ? String(c) : c);
  }
}

/** Replaces an element's children. */
export function fill(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

/** A table from a header row and body rows (cells are nodes or text). */
export function table(caption: string, head: string[], rows: Child[][], attrs: Record<string, AttrValue> = {}): HTMLTableElement {
  return h(
    'table',
    attrs,
    h('caption', {}, caption),
    h('thead', {}, h('tr', {}, head.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.length ? rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c)))) : h('tr', {}, h('td', { colspan: head.length, class: 'empty' }, 'none'))),
  );
}

export const shortId = (id: string | null | undefined): string => (id ? id.slice(0, 8) : '–');

/** A version id shown short, with the whole id as its title. */
export function versionTag(id: string | null | undefined): HTMLElement {
  return id ? h('code', { class: 'version', title: id }, shortId(id)) : h('span', { class: 'muted' }, '–');
}

export function fmtBytes(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 2 ** 20) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 2 ** 30) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  return `${(n / 2 ** 30).toFixed(2)} GiB`;
}

export function fmtNum(x: number | null | undefined, digits = 3): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(digits);
}

export function fmtPct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : `${(100 * x).toFixed(1)} %`;
}

export function fmtSeconds(s: number | null | undefined): string {
  return s === null || s === undefined || !Number.isFinite(s) ? '–' : s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

/** A timestamp as "12 s ago" with the exact time as the title (kept current by refreshTimes). */
export function timeAgo(iso: string | null | undefined): HTMLElement {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return h('span', {}, iso);
  return h('time', { datetime: iso, title: new Date(t).toLocaleString() }, agoText(t));
}

function agoText(t: number): string {
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.round(s / 60)} min ago` : s < 86_400 ? `${Math.round(s / 3600)} h ago` : new Date(t).toLocaleDateString();
}

/** Updates every "… ago" on the page (a clock: nothing is fetched). */
export function refreshTimes(): void {
  document.querySelectorAll('time[datetime]').forEach((el) => {
    const text = agoText(Date.parse(el.getAttribute('datetime')!));
    if (el.textContent !== text) el.textContent = text;
  });
}

export function badge(text: string, kind: string, title?: string): HTMLElement {
  return h('span', { class: `badge ${kind}`, title }, text);
}
