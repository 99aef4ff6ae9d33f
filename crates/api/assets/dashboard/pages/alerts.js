// Alerts: the list by state (live: every change on the `alerts` topic reloads it),
// one alert with its threats, history and notification deliveries, and acknowledge,
// resolve or dismiss with a comment. On a build without the alerts API (404) the page
// says so instead of failing.
import { h, fill, time, table, empty, failure, kv, field, sev } from '../ui.js';

const STATES = ['active', 'acknowledged', 'resolved', 'dismissed'];
const ACTIONS = [['acknowledge', 'Acknowledge'], ['resolve', 'Resolve'], ['dismiss', 'Dismiss']];

async function detail(panel, id, { api, navigate, state }) {
  try {
    const d = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
    const a = d.alert;
    const comment = h('input', { id: 'alert-comment', name: 'comment' });
    const msg = h('div', { role: 'status' });
    const form = h('form', { class: 'inline', id: 'alert-actions' }, field('Comment', comment),
      ACTIONS.map(([act, label]) => h('button', { type: 'button', 'data-action': act, onclick: async () => {
        try {
          await api(`/api/v1/alerts/${a.id}/${act}`, { method: 'POST', body: { comment: comment.value } });
          navigate('alerts', { state, id: a.id, _: Date.now() });
        } catch (e) { fill(msg, failure(e)); }
      } }, label)));
    fill(panel, h('div', { class: 'card', id: 'alert-detail' }, h('h2', {}, a.title),
      kv([['State', a.state], ['Severity', sev(a.severity)], ['Category', a.category], ['Rule', a.rule_name],
        ['Threats', String(a.count)], ['First seen', time(a.first_seen)], ['Last seen', time(a.last_seen)],
        ['Last change', a.state_by ? `${time(a.state_at)} by ${a.state_by}${a.state_comment ? `: ${a.state_comment}` : ''}` : null]]),
      form, msg,
      h('h2', {}, 'History'), table([
        { label: 'Time', cell: (x) => time(x.at) },
        { label: 'Change', cell: (x) => `${x.from_state ? `${x.from_state} → ` : ''}${x.to_state}` },
        { label: 'By', cell: (x) => x.actor || 'rule' },
        { label: 'Comment', cell: (x) => x.comment || '' }], d.history || []),
      h('h2', {}, 'Threats'), (d.threats || []).length ? table([
        { label: 'Time', cell: (t) => time(t.ts) },
        { label: 'Client', cell: (t) => t.client_ip || '' },
        { label: 'Request', cell: (t) => [t.method, t.uri].filter(Boolean).join(' ') }],
      d.threats, (t) => navigate('threats', { id: t.id })) : empty('No threat kept for this alert.'),
      h('h2', {}, 'Notifications'), (d.deliveries || []).length ? table([
        { label: 'Created', cell: (x) => time(x.created_at) },
        { label: 'Channel', cell: (x) => String(x.channel_id) },
        { label: 'Event', cell: (x) => x.event },
        { label: 'State', cell: (x) => `${x.state} (${x.attempts} attempts)` }], d.deliveries)
        : empty('No notification was sent: add a channel (webhook, Slack, e-mail) to an alert rule.')));
  } catch (e) { fill(panel, failure(e)); }
}

/** Renders the alerts page. */
export async function render(root, ctx) {
  const { api, live, params, navigate } = ctx;
  const state = STATES.includes(params.get('state')) ? params.get('state') : 'active';
  const pick = h('select', { id: 'alert-state', name: 'state' }, STATES.map((v) => h('option', { value: v, selected: v === state }, v)));
  pick.addEventListener('change', () => navigate('alerts', { state: pick.value }));
  const list = h('div', { id: 'alert-list' });
  const more = h('button', { type: 'button', hidden: true, id: 'alert-more' }, 'Load more');
  const panel = h('div', { id: 'alert-panel' });
  fill(root, h('form', { class: 'filters' }, field('State', pick)), h('div', { class: 'split' }, h('div', {}, list, more), panel));
  const columns = [
    { label: 'Last seen', cell: (a) => time(a.last_seen) },
    { label: 'Severity', cell: (a) => sev(a.severity) },
    { label: 'Alert', cell: (a) => a.title },
    { label: 'Threats', cell: (a) => String(a.count) },
  ];
  // Cursor paging: `pages` pages of 50 are shown; a live change reloads as many.
  let pages = 1;
  let cursor = null;
  let tbl = null;
  const page = async (from) => {
    const p = await api('/api/v1/alerts', { query: { state, limit: 50, cursor: from } });
    for (const a of p.items || []) tbl.addRow(a);
    cursor = p.next_cursor;
    more.hidden = !cursor;
  };
  const load = async () => {
    tbl = table(columns, [], (a) => navigate('alerts', { state, id: a.id }), (a) => ({ 'data-alert-id': a.id }));
    cursor = null;
    for (let i = 0; i < pages && (i === 0 || cursor); i += 1) await page(cursor);
    fill(list, tbl.tBodies[0].rows.length ? tbl
      : empty(`No ${state} alert. Alerts are raised by alert rules over threats (the built-in ones: critical findings, attacks by client and category).`));
  };
  more.addEventListener('click', () => { pages += 1; page(cursor).catch((e) => list.append(failure(e))); });
  try {
    await load();
  } catch (e) {
    fill(root, e.status === 404 ? empty('Alerts are not available in this build of Palisade (the alerts API answered 404). Threats are on the Threats page.') : failure(e));
    return undefined;
  }
  if (params.get('id')) await detail(panel, params.get('id'), { ...ctx, state });
  else fill(panel, empty('Select an alert to see its threats, history and notifications.'));
  let pending = null;
  const off = live.subscribe('alerts', () => {
    clearTimeout(pending);
    pending = setTimeout(() => load().catch(() => {}), 300);
  });
  return () => { clearTimeout(pending); off(); };
}
