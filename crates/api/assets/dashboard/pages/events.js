// Traffic explorer: every stored event, filtered in the database (time range, client
// address or CIDR, method, status, path prefix, host, source, kind, free text),
// cursor pagination, one event's detail and a pivot from an address to all it did.
import { h, fill, time, table, empty, failure, kv, field, formValues } from '../ui.js';

const FILTERS = ['range', 'client_ip', 'method', 'status', 'path_prefix', 'host', 'source', 'kind', 'q'];

async function detail(panel, id, { api, navigate }) {
  fill(panel, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const e = await api(`/api/v1/events/${encodeURIComponent(id)}`);
    const ip = e.client_ip;
    fill(panel, h('div', { class: 'card', id: 'event-detail' }, h('h2', {}, `Event ${e.id}`),
      kv([['Time', time(e.ts)], ['Received', time(e.received_at)], ['Kind', e.kind], ['Source', e.source],
        ['Client', ip], ['Host', e.host], ['Request', [e.method, e.path, e.query ? `?${e.query}` : ''].filter(Boolean).join(' ')],
        ['Protocol', e.protocol], ['Status', e.status == null ? null : String(e.status)], ['Bytes', e.bytes == null ? null : String(e.bytes)],
        ['Duration', e.duration_us == null ? null : `${(e.duration_us / 1000).toFixed(2)} ms`], ['Referer', e.referer],
        ['User agent', e.user_agent], ['User', e.user], ['Message', e.message], ['Verdict', e.verdict]]),
      ip ? h('div', { class: 'row' },
        h('button', { type: 'button', class: 'primary', id: 'pivot-ip', onclick: () => navigate('ip', { ip }) }, `Everything ${ip} did`),
        h('button', { type: 'button', onclick: () => navigate('events', { client_ip: ip }) }, `All events of ${ip}`),
        h('button', { type: 'button', onclick: () => navigate('threats', { client_ip: ip }) }, `Threats of ${ip}`),
        h('button', { type: 'button', onclick: () => navigate('decisions', { ip }) }, `Decisions on ${ip}`)) : null));
  } catch (e) {
    fill(panel, failure(e));
  }
}

/** Renders the traffic explorer. */
export async function render(root, ctx) {
  const { api, params, navigate } = ctx;
  const f = {};
  for (const k of FILTERS) if (params.get(k)) f[k] = params.get(k);
  const input = (name, label, attrs) => field(label, h('input', { name, id: `f-${name}`, value: f[name] || '', ...attrs }));
  const form = h('form', { class: 'filters', id: 'event-filters' },
    field('Range', h('select', { name: 'range', id: 'f-range' }, [['', 'Any time'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days']]
      .map(([v, l]) => h('option', { value: v, selected: (f.range || '') === v }, l)))),
    input('q', 'Search', { type: 'search', placeholder: 'text in path, agent, message' }),
    input('client_ip', 'Client address or CIDR'),
    input('method', 'Method', { size: 6 }),
    input('status', 'Status', { size: 5, inputmode: 'numeric' }),
    input('path_prefix', 'Path prefix', { placeholder: '/api/' }),
    input('host', 'Host'),
    input('source', 'Source'),
    field('Kind', h('select', { name: 'kind', id: 'f-kind' }, ['', 'http', 'error_log', 'auth', 'syslog', 'flow']
      .map((v) => h('option', { value: v, selected: (f.kind || '') === v }, v || 'any')))),
    h('button', { type: 'submit', class: 'primary' }, 'Search'));
  form.addEventListener('submit', (e) => { e.preventDefault(); navigate('events', formValues(form)); });
  const list = h('div', { id: 'event-list' });
  const panel = h('div', { id: 'event-panel' });
  const more = h('button', { type: 'button', hidden: true, id: 'more' }, 'Load more');
  fill(root, form, h('div', { class: 'split' }, h('div', {}, list, more), panel));

  const tbl = table([
    { label: 'Time', cell: (e) => time(e.ts) },
    { label: 'Client', cell: (e) => (e.client_ip ? h('a', { href: `#/ip?ip=${encodeURIComponent(e.client_ip)}` }, e.client_ip) : '') },
    { label: 'Request', cell: (e) => [e.method, e.path].filter(Boolean).join(' ') || e.message || '' },
    { label: 'Status', cell: (e) => (e.status == null ? '' : String(e.status)) },
    { label: 'Source', cell: (e) => e.source },
  ], [], (e) => navigate('events', { ...f, id: e.id }), (e) => ({ 'data-event-id': e.id }));
  let cursor = null;
  let shown = 0;
  const page = async () => {
    const p = await api('/api/v1/events', { query: { ...f, cursor, limit: 50 } });
    for (const e of p.items || []) tbl.addRow(e);
    shown += (p.items || []).length;
    cursor = p.next_cursor;
    more.hidden = !cursor;
    fill(list, shown ? tbl : empty(Object.keys(f).length
      ? 'No event matches; widen the range or clear a filter.'
      : 'No traffic yet — point Palisade at an nginx log ([[sources]] path = "/var/log/nginx/access.log"), push lines to POST /api/v1/ingest, or start an import_logs job.'));
  };
  more.addEventListener('click', () => page().catch((e) => list.append(failure(e))));
  try { await page(); } catch (e) { fill(list, failure(e)); }
  if (params.get('id')) detail(panel, params.get('id'), ctx);
  else fill(panel, empty('Select an event to see all its fields.'));
  return undefined;
}
