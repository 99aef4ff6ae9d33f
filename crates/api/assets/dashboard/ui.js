// Small DOM helpers shared by the pages: element building, formatting, tables, states.

/** Builds an element: h('a', {href: '#/x', class: 'c'}, 'text', child). */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the CSP
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** A time in the browser's zone. */
export function time(ts) {
  if (!ts) return '';
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? String(ts) : d.toLocaleString();
}

/** A `datetime-local` value (the browser's zone) as an RFC 3339 instant, or ''. */
export function instant(local) {
  if (!local) return '';
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

/** An RFC 3339 instant as a `datetime-local` value in the browser's zone. */
export function localValue(iso) {
  const d = new Date(iso || '');
  if (Number.isNaN(d.getTime())) return '';
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** A count with grouping. */
export function num(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  return Number(v).toLocaleString(undefined, { maximumFractionDigits: digits });
}

/** An empty state saying what to do. */
export function empty(text, ...more) { return h('div', { class: 'empty', role: 'note' }, text, ...more); }

/** An error box. */
export function failure(err) { return h('div', { class: 'error', role: 'alert' }, err.message || String(err)); }

/** A severity word, coloured and spelled out. */
export function sev(s) { return h('span', { class: `sev ${s || ''}` }, s || ''); }

/** A state word (job, check), coloured and spelled out. */
export function stateWord(s) { return h('span', { class: `st-${s}` }, s); }

/**
 * A table: columns [{label, cell(row) → node|text}], rows; `open(row)` makes rows
 * focusable and openable with Enter or a click.
 */
export function table(columns, rows, open, rowAttrs) {
  const body = h('tbody');
  const t = h('table', {}, h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))), body);
  t.addRow = (row, first) => {
    const tr = h('tr', rowAttrs ? rowAttrs(row) : {}, columns.map((c) => h('td', {}, c.cell(row))));
    if (open) {
      tr.tabIndex = 0;
      tr.addEventListener('click', (e) => { if (!e.target.closest('button,a')) open(row); });
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') open(row); });
    }
    if (first) body.prepend(tr); else body.append(tr);
    return tr;
  };
  for (const r of rows) t.addRow(r);
  return t;
}

/** A labelled field. */
export function field(label, input) { return h('label', {}, label, input); }

/** A definition list of [key, value] pairs (values may be nodes). */
export function kv(pairs) {
  return h('dl', { class: 'kv' }, pairs.filter(([, v]) => v !== undefined && v !== null && v !== '')
    .map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

/** Reads a form's named fields into an object, leaving out empty ones. */
export function formValues(form) {
  const out = {};
  for (const [k, v] of new FormData(form).entries()) if (v !== '') out[k] = v;
  return out;
}

/** Text with every occurrence of `needle` highlighted (for evidence). */
export function highlight(text, needle) {
  const s = String(text || '');
  if (!needle) return s;
  const parts = [];
  let from = 0;
  for (;;) {
    const i = s.indexOf(needle, from);
    if (i < 0) break;
    parts.push(s.slice(from, i), h('mark', {}, needle));
    from = i + needle.length;
  }
  parts.push(s.slice(from));
  return parts;
}

/** Replaces an element's children. */
export function fill(el, ...children) { el.replaceChildren(); append(el, children); return el; }
