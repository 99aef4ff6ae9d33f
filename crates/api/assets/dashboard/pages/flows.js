// Network flows read from packet captures: filtered in the database (address or CIDR,
// port, protocol, application, connection state, time range), cursor pagination, and one
// flow's detail with links to its two addresses.
import { h, fill, time, table, empty, failure, kv, field, formValues, num, instant, localValue } from '../ui.js';

const FILTERS = ['range', 'from', 'to', 'ip', 'port', 'protocol', 'application', 'state'];
const STATES = ['S0', 'S1', 'SF', 'REJ', 'S2', 'S3', 'RSTO', 'RSTR', 'RSTOS0', 'RSTRH', 'SH', 'SHR', 'OTH'];
const STATE_WORDS = {
  S0: 'attempt, no reply', S1: 'established', SF: 'completed', REJ: 'rejected', S2: 'closed by originator only',
  S3: 'closed by responder only', RSTO: 'reset by originator', RSTR: 'reset by responder', RSTOS0: 'SYN then reset by originator',
  RSTRH: 'SYN-ACK then reset by responder', SH: 'SYN then FIN, no reply', SHR: 'responder SYN-ACK then FIN', OTH: 'no SYN seen',
};

const ipLink = (ip, port) => h('span', { class: 'nowrap' }, h('a', { href: `#/ip?ip=${encodeURIComponent(ip)}` }, ip), port ? `:${port}` : '');
const duration = (f) => {
  const ms = (Date.parse(f.end) - Date.parse(f.start));
  return Number.isNaN(ms) ? '' : ms < 1000 ? `${ms} ms` : `${num(ms / 1000, 1)} s`;
};

async function detail(panel, id, { api }) {
  fill(panel, h('p', { class: 'muted' }, 'Loading…'));
  try {
    const f = await api(`/api/v1/flows/${encodeURIComponent(id)}`);
    fill(panel, h('div', { class: 'card', id: 'flow-detail' }, h('h2', {}, `Flow ${f.id}`),
      kv([['Start', time(f.start)], ['End', time(f.end)], ['Duration', duration(f)], ['Capture', f.source],
        ['Protocol', f.protocol], ['Application', f.app ? `${f.app}${f.app_by_port ? ' (guessed from the port)' : ''}` : null],
        ['Originator', ipLink(f.src_ip, f.src_port)], ['Responder', ipLink(f.dst_ip, f.dst_port)],
        ['State', `${f.state} (${STATE_WORDS[f.state] || 'see Zeek conn states'})`],
        ['Originator sent', `${num(f.orig_packets)} packets, ${num(f.orig_bytes)} bytes`],
        ['Responder sent', `${num(f.resp_packets)} packets, ${num(f.resp_bytes)} bytes`]]),
      f.detail && Object.keys(f.detail).length ? [h('h3', {}, 'Details'), h('pre', {}, JSON.stringify(f.detail, null, 2))] : null));
  } catch (e) { fill(panel, failure(e)); }
}

/** Renders the flows page. */
export async function render(root, ctx) {
  const { api, params, navigate } = ctx;
  const f = {};
  for (const k of FILTERS) if (params.get(k)) f[k] = params.get(k);
  const input = (name, label, attrs) => field(label, h('input', { name, id: `fl-${name}`, value: f[name] || '', ...attrs }));
  const form = h('form', { class: 'filters', id: 'flow-filters' },
    field('Range', h('select', { name: 'range', id: 'fl-range' }, [['', 'Any time / dates below'], ['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days']]
      .map(([v, l]) => h('option', { value: v, selected: (f.range || '') === v }, l)))),
    field('From', h('input', { name: 'from', id: 'fl-from', type: 'datetime-local', value: localValue(f.from) })),
    field('To', h('input', { name: 'to', id: 'fl-to', type: 'datetime-local', value: localValue(f.to) })),
    input('ip', 'Address or CIDR', { placeholder: '10.0.0.0/8' }),
    input('port', 'Port', { inputmode: 'numeric', size: 6 }),
    field('Protocol', h('select', { name: 'protocol', id: 'fl-protocol' }, ['', 'tcp', 'udp', 'icmp', 'icmpv6']
      .map((v) => h('option', { value: v, selected: (f.protocol || '') === v }, v || 'any')))),
    input('application', 'Application', { placeholder: 'http, dns, tls, ssh', size: 10 }),
    field('State', h('select', { name: 'state', id: 'fl-state' }, ['', ...STATES]
      .map((v) => h('option', { value: v, selected: (f.state || '') === v }, v ? `${v}: ${STATE_WORDS[v]}` : 'any')))),
    h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const v = formValues(form);
    v.from = instant(v.from);
    v.to = instant(v.to);
    if (v.range) { delete v.from; delete v.to; }
    navigate('flows', v);
  });
  const list = h('div', { id: 'flow-list' });
  const panel = h('div', { id: 'flow-panel' });
  const more = h('button', { type: 'button', hidden: true, id: 'flow-more' }, 'Load more');
  fill(root, form, h('div', { class: 'split' }, h('div', {}, list, more), panel));
  const tbl = table([
    { label: 'Start', cell: (x) => time(x.start) },
    { label: 'Duration', cell: duration },
    { label: 'Protocol', cell: (x) => [x.protocol, x.app].filter(Boolean).join(' / ') },
    { label: 'From', cell: (x) => ipLink(x.src_ip, x.src_port) },
    { label: 'To', cell: (x) => ipLink(x.dst_ip, x.dst_port) },
    { label: 'State', cell: (x) => h('abbr', { title: STATE_WORDS[x.state] || '' }, x.state) },
    { label: 'Packets', cell: (x) => num(x.orig_packets + x.resp_packets) },
    { label: 'Bytes', cell: (x) => num(x.orig_bytes + x.resp_bytes) },
  ], [], (x) => navigate('flows', { ...f, id: x.id }), (x) => ({ 'data-flow-id': x.id }));
  let cursor = null;
  let shown = 0;
  const page = async () => {
    const p = await api('/api/v1/flows', { query: { ...f, cursor, limit: 50 } });
    for (const x of p.items || []) tbl.addRow(x);
    shown += (p.items || []).length;
    cursor = p.next_cursor;
    more.hidden = !cursor;
    fill(list, shown ? tbl : empty(Object.keys(f).length
      ? 'No flow matches; widen the range or clear a filter.'
      : 'No flows yet — import a packet capture: palisade ingest capture.pcap (pcap or pcapng).'));
  };
  more.addEventListener('click', () => page().catch((e) => list.append(failure(e))));
  try { await page(); } catch (e) { fill(list, failure(e)); }
  if (params.get('id')) detail(panel, params.get('id'), ctx);
  else fill(panel, empty('Select a flow to see its packets, bytes and application details.'));
  return undefined;
}
