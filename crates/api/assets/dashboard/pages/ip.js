// One address (or network), everything it did: its decisions, threats, events, flows and
// the alerts grouped by it, with a ban (analysts and admins; the API enforces it). Every
// list is the API's, filtered in the database by the address, with cursor paging.
import { h, fill, time, table, empty, failure, field, sev } from '../ui.js';

/** A list with a "Load more" button over one cursor-paged endpoint. */
function paged(box, { api, path, query, columns, open, rowAttrs, none, id }) {
  const more = h('button', { type: 'button', hidden: true, id: `${id}-more` }, 'Load more');
  const tbl = table(columns, [], open, rowAttrs);
  const list = h('div', { id });
  fill(box, list, more);
  let cursor = null;
  let shown = 0;
  const page = async () => {
    const p = await api(path, { query: { ...query, cursor, limit: 50 } });
    for (const x of p.items || []) tbl.addRow(x);
    shown += (p.items || []).length;
    cursor = p.next_cursor;
    more.hidden = !cursor;
    fill(list, shown ? tbl : empty(none));
  };
  more.addEventListener('click', () => page().catch((e) => list.append(failure(e))));
  return page().catch((e) => fill(list, failure(e)));
}

/** Whether an alert's group key names this address (`client_ip=…` is one of its pairs). */
const groupedBy = (a, ip) => String(a.group_key || '').split(' ').includes(`client_ip=${ip}`);

/** Renders the address page. */
export async function render(root, ctx) {
  const { api, params, navigate, allowed } = ctx;
  const ip = (params.get('ip') || '').trim();
  const pick = h('form', { class: 'filters', id: 'ip-pick' },
    field('Address or CIDR', h('input', { name: 'ip', id: 'ip-value', value: ip, required: true, placeholder: '203.0.113.7 or 203.0.113.0/24' })),
    h('button', { type: 'submit', class: 'primary' }, 'Show'));
  pick.addEventListener('submit', (e) => { e.preventDefault(); navigate('ip', { ip: pick.elements.namedItem('ip').value.trim() }); });
  if (!ip) {
    fill(root, pick, empty('Give an address to see everything it did: its requests, threats, alerts, bans and flows. Every client address in the Threats and Traffic pages links here.'));
    return undefined;
  }
  const msg = h('div', { role: 'status', id: 'ip-msg' });
  let ban = null;
  if (allowed('analyst')) {
    ban = h('form', { class: 'inline card', id: 'ip-ban', 'aria-label': `Ban ${ip}` },
      field('Ban for (empty: 4h)', h('input', { name: 'duration', id: 'ban-duration', placeholder: '4h, 7d, 30m', size: 8 })),
      field('Reason', h('input', { name: 'reason', id: 'ban-reason', value: `seen on the address page of ${ip}` })),
      h('button', { type: 'submit', class: 'danger' }, `Ban ${ip}`));
    ban.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { kind: 'ban', value: ip };
      for (const n of ['duration', 'reason']) { const v = ban.elements.namedItem(n).value.trim(); if (v) body[n] = v; }
      try {
        const r = await api('/api/v1/decisions', { method: 'POST', body });
        fill(msg, h('p', {}, `Ban on ${r.value}: ${r.outcome}.`));
        await decisions();
      } catch (ex) {
        fill(msg, failure(ex));
        if (ex.field) { const el = ban.querySelector(`[name="${ex.field}"]`); if (el) el.focus(); }
      }
    });
  }
  const dBox = h('div', { id: 'ip-decisions' });
  const tBox = h('div');
  const aBox = h('div', { id: 'ip-alerts' });
  const eBox = h('div');
  const fBox = h('div');
  fill(root, pick, h('div', { class: 'ip-head' }, h('h2', {}, ip), ban), msg,
    h('h2', {}, 'Decisions'), dBox,
    h('div', { class: 'grid2' }, h('section', { 'aria-label': 'Threats' }, h('h2', {}, 'Threats'), tBox),
      allowed('analyst') ? h('section', { 'aria-label': 'Alerts' }, h('h2', {}, 'Alerts'), aBox) : null),
    h('h2', {}, 'Events'), eBox, h('h2', {}, 'Flows'), fBox);

  const decisions = async () => {
    try {
      const p = await api('/api/v1/decisions', { query: { ip, active: 'any', limit: 100 } });
      fill(dBox, (p.items || []).length ? table([
        { label: 'Kind', cell: (d) => d.kind },
        { label: 'Value', cell: (d) => d.value },
        { label: 'Origin', cell: (d) => d.origin },
        { label: 'Reason', cell: (d) => d.scenario || '' },
        { label: 'Created', cell: (d) => time(d.created_at) },
        { label: 'Until', cell: (d) => (d.expires_at ? time(d.expires_at) : 'no end') },
        { label: 'State', cell: (d) => (d.active ? 'in force' : 'ended') },
      ], p.items, null, (d) => ({ 'data-decision': d.value })) : empty(`No ban or allow-list entry has ever covered ${ip}.`));
    } catch (e) { fill(dBox, failure(e)); }
  };
  const alerts = async () => {
    try {
      // The alerts API filters by state, severity and category, not by address: the
      // 500 latest alerts (every state) are read and those grouped by this one kept.
      const p = await api('/api/v1/alerts', { query: { limit: 500 } });
      const mine = (p.items || []).filter((a) => groupedBy(a, ip));
      fill(aBox, mine.length ? table([
        { label: 'Last seen', cell: (a) => time(a.last_seen) },
        { label: 'Severity', cell: (a) => sev(a.severity) },
        { label: 'Alert', cell: (a) => a.title },
        { label: 'State', cell: (a) => a.state },
      ], mine, (a) => navigate('alerts', { state: a.state, id: a.id }), (a) => ({ 'data-alert-id': a.id }))
        : empty(`None of the 500 latest alerts is grouped by ${ip} (rules that group by client address name it in their alerts).`));
    } catch (e) { fill(aBox, e.status === 404 ? empty('Alerts are not available in this build.') : failure(e)); }
  };
  await Promise.all([
    decisions(),
    allowed('analyst') ? alerts() : null,
    paged(tBox, { api, id: 'ip-threats', path: '/api/v1/threats', query: { client_ip: ip },
      columns: [
        { label: 'Time', cell: (t) => time(t.ts) },
        { label: 'Severity', cell: (t) => sev(t.severity) },
        { label: 'Category', cell: (t) => t.category },
        { label: 'Request', cell: (t) => [t.method, t.uri].filter(Boolean).join(' ') },
        { label: 'Decision', cell: (t) => t.decision },
      ],
      open: (t) => navigate('threats', { client_ip: ip, id: t.id }), rowAttrs: (t) => ({ 'data-threat-id': t.id }),
      none: `No threat from ${ip}.` }),
    paged(eBox, { api, id: 'ip-events', path: '/api/v1/events', query: { client_ip: ip },
      columns: [
        { label: 'Time', cell: (e) => time(e.ts) },
        { label: 'Kind', cell: (e) => e.kind },
        { label: 'Request', cell: (e) => [e.method, e.host, e.path].filter(Boolean).join(' ') || e.message || '' },
        { label: 'Status', cell: (e) => (e.status == null ? '' : String(e.status)) },
        { label: 'User agent', cell: (e) => e.user_agent || '' },
        { label: 'Source', cell: (e) => e.source },
      ],
      open: (e) => navigate('events', { client_ip: ip, id: e.id }), rowAttrs: (e) => ({ 'data-event-id': e.id }),
      none: `No stored event from ${ip}.` }),
    paged(fBox, { api, id: 'ip-flows', path: '/api/v1/flows', query: { ip },
      columns: [
        { label: 'Start', cell: (f) => time(f.start) },
        { label: 'Protocol', cell: (f) => [f.protocol, f.app].filter(Boolean).join(' / ') },
        { label: 'From', cell: (f) => `${f.src_ip}:${f.src_port}` },
        { label: 'To', cell: (f) => `${f.dst_ip}:${f.dst_port}` },
        { label: 'State', cell: (f) => f.state },
      ],
      open: (f) => navigate('flows', { ip, id: f.id }), rowAttrs: (f) => ({ 'data-flow-id': f.id }),
      none: `No network flow with ${ip} (flows come from packet captures: palisade ingest capture.pcap).` }),
  ]);
  return undefined;
}
