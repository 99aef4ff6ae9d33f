// Threats: filtered list (newest first, cursor pagination), live additions, and one
// threat's evidence: the decoded value with the matched text highlighted, the rule and
// the event it came from.
import { h, fill, time, sev, table, empty, failure, kv, field, formValues, highlight } from '../ui.js';

const FILTERS = ['range', 'category', 'severity', 'client_ip', 'rule_id'];

function matches(t, f) {
  if (f.category && t.category !== f.category) return false;
  if (f.severity && t.severity !== f.severity) return false;
  if (f.client_ip && t.client_ip !== f.client_ip) return false;
  if (f.rule_id && !(t.rule_ids || []).includes(Number(f.rule_id))) return false;
  return true;
}

async function detail(panel, id, { api, navigate, allowed }) {
  fill(panel, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const t = await api(`/api/v1/threats/${encodeURIComponent(id)}`);
    const ban = allowed('analyst') && t.client_ip ? h('button', {
      type: 'button', class: 'danger',
      onclick: () => navigate('decisions', { value: t.client_ip, reason: `threat ${t.id}: ${t.category}` }),
    }, `Ban ${t.client_ip}…`) : null;
    fill(panel, h('div', { class: 'card', id: 'threat-detail' },
      h('h2', {}, `Threat ${t.id}`),
      kv([
        ['Time', time(t.ts)], ['Category', t.category], ['Severity', sev(t.severity)], ['Score', String(t.score)],
        ['Decision', t.decision], ['Rules', (t.rule_ids || []).join(', ')], ['Client', t.client_ip],
        ['Request', [t.method, t.uri].filter(Boolean).join(' ')], ['Source', t.source],
        ['Event', t.event_id ? h('a', { href: `#/events?id=${t.event_id}` }, `event ${t.event_id}`) : null],
      ]),
      h('h2', {}, 'Evidence'),
      (t.evidence || []).length ? (t.evidence || []).map((e) => h('div', { class: 'card' },
        kv([['Rule', String(e.rule_id)], ['Where', `${e.location} ${e.part}`]]),
        h('pre', {}, highlight(e.decoded_value, e.matched)))) : empty('This threat carries no evidence (a behaviour scenario or a refusal).'),
      h('div', { class: 'row' }, ban,
        t.client_ip ? h('a', { href: `#/ip?ip=${encodeURIComponent(t.client_ip)}`, id: 'pivot-ip' }, `Everything ${t.client_ip} did`) : null)));
  } catch (e) {
    fill(panel, failure(e));
  }
}

/** Renders the threats page. */
export async function render(root, ctx) {
  const { api, live, params, navigate } = ctx;
  const f = {};
  for (const k of FILTERS) if (params.get(k)) f[k] = params.get(k);
  const input = (name, label, attrs) => field(label, h('input', { name, id: `f-${name}`, value: f[name] || '', ...attrs }));
  const form = h('form', { class: 'filters', id: 'threat-filters' },
    field('Range', h('select', { name: 'range', id: 'f-range' }, [['', 'Any time'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days']]
      .map(([v, l]) => h('option', { value: v, selected: (f.range || '') === v }, l)))),
    input('category', 'Category', { placeholder: 'sqli, xss, …' }),
    field('Severity', h('select', { name: 'severity', id: 'f-severity' }, ['', 'notice', 'warning', 'error', 'critical']
      .map((v) => h('option', { value: v, selected: (f.severity || '') === v }, v || 'any')))),
    input('client_ip', 'Client address or CIDR', { placeholder: '203.0.113.0/24' }),
    input('rule_id', 'Rule id', { inputmode: 'numeric' }),
    h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  form.addEventListener('submit', (e) => { e.preventDefault(); navigate('threats', formValues(form)); });
  const list = h('div', { id: 'threat-list' });
  const panel = h('div', { id: 'threat-panel' });
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  fill(root, form, h('div', { class: 'split' }, h('div', {}, list, more), panel));

  const open = (t) => navigate('threats', { ...f, id: t.id });
  const tbl = table([
    { label: 'Time', cell: (t) => time(t.ts) },
    { label: 'Severity', cell: (t) => sev(t.severity) },
    { label: 'Category', cell: (t) => t.category },
    { label: 'Client', cell: (t) => (t.client_ip ? h('a', { href: `#/ip?ip=${encodeURIComponent(t.client_ip)}` }, t.client_ip) : '') },
    { label: 'Request', cell: (t) => [t.method, t.uri].filter(Boolean).join(' ') },
    { label: 'Decision', cell: (t) => t.decision },
  ], [], open, (t) => ({ 'data-threat-id': t.id }));
  let cursor = null;
  let shown = 0;
  const page = async () => {
    const p = await api('/api/v1/threats', { query: { ...f, cursor, limit: 50 } });
    for (const t of p.items || []) tbl.addRow(t);
    shown += (p.items || []).length;
    cursor = p.next_cursor;
    more.hidden = !cursor;
    fill(list, shown ? tbl : empty(Object.keys(f).length
      ? 'No threat matches these filters; widen the range or clear a filter.'
      : 'No threats yet. Threats appear here live when /api/v1/check, the proxy or ingested logs catch an attack.'));
  };
  more.addEventListener('click', () => page().catch((e) => list.append(failure(e))));
  try { await page(); } catch (e) { fill(list, failure(e)); }
  if (params.get('id')) detail(panel, params.get('id'), ctx);
  else fill(panel, empty('Select a threat to see its evidence.'));

  return live.subscribe('threats', (t) => {
    if (t.gap) { navigate('threats', { ...f, _: Date.now() }); return; }
    if (!matches(t, f)) return;
    if (shown === 0) fill(list, tbl);
    shown += 1;
    tbl.addRow(t, true).classList.add('fresh');
  });
}
