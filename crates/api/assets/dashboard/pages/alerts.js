// Alerts, coded against the alerts API (GET /api/v1/alerts?state=…, GET …/{id},
// POST …/{id}/acknowledge|resolve|dismiss {comment}, live topic `alerts`). On a build
// without it (404) the page says so instead of failing.
import { h, fill, time, table, empty, failure, kv, field, sev } from '../ui.js';

const ACTIONS = [['acknowledge', 'Acknowledge'], ['resolve', 'Resolve'], ['dismiss', 'Dismiss']];

async function detail(panel, id, { api, allowed, navigate, state }) {
  try {
    const a = await api(`/api/v1/alerts/${encodeURIComponent(id)}`);
    const comment = h('input', { id: 'alert-comment', name: 'comment' });
    const msg = h('div', { role: 'status' });
    const form = allowed('analyst') ? h('form', { class: 'inline' }, field('Comment', comment),
      ACTIONS.map(([act, label]) => h('button', { type: 'button', 'data-action': act, onclick: async () => {
        try {
          await api(`/api/v1/alerts/${a.id}/${act}`, { method: 'POST', body: { comment: comment.value } });
          navigate('alerts', { state, id: a.id, _: Date.now() });
        } catch (e) { fill(msg, failure(e)); }
      } }, label))) : null;
    const pairs = Object.entries(a).filter(([, v]) => v !== null && typeof v !== 'object').map(([k, v]) => [k.replace(/_/g, ' '), String(v)]);
    fill(panel, h('div', { class: 'card', id: 'alert-detail' }, h('h2', {}, a.title || `Alert ${a.id}`), kv(pairs),
      form, msg,
      Array.isArray(a.history) && a.history.length ? [h('h2', {}, 'History'), table([
        { label: 'Time', cell: (x) => time(x.at || x.ts) },
        { label: 'By', cell: (x) => x.actor || x.by || '' },
        { label: 'What', cell: (x) => x.action || x.state || '' },
        { label: 'Comment', cell: (x) => x.comment || '' }], a.history)] : null));
  } catch (e) { fill(panel, failure(e)); }
}

/** Renders the alerts page. */
export async function render(root, ctx) {
  const { api, live, params, navigate } = ctx;
  const state = params.get('state') || 'open';
  const pick = h('select', { id: 'alert-state', name: 'state' }, ['open', 'acknowledged', 'resolved', 'dismissed']
    .map((v) => h('option', { value: v, selected: v === state }, v)));
  pick.addEventListener('change', () => navigate('alerts', { state: pick.value }));
  const list = h('div', { id: 'alert-list' });
  const panel = h('div', { id: 'alert-panel' });
  fill(root, h('form', { class: 'filters' }, field('State', pick)), h('div', { class: 'split' }, list, panel));
  let p;
  try {
    p = await api('/api/v1/alerts', { query: { state, limit: 100 } });
  } catch (e) {
    fill(root, e.status === 404 ? empty('Alerts are not available in this build of Palisade (the alerts API answered 404). Threats are on the Threats page.') : failure(e));
    return undefined;
  }
  const tbl = table([
    { label: 'Time', cell: (a) => time(a.created_at || a.ts) },
    { label: 'Severity', cell: (a) => sev(a.severity) },
    { label: 'Alert', cell: (a) => a.title || a.rule || `alert ${a.id}` },
    { label: 'State', cell: (a) => a.state || '' },
  ], [], (a) => navigate('alerts', { state, id: a.id }), (a) => ({ 'data-alert-id': a.id }));
  for (const a of p.items || []) tbl.addRow(a);
  fill(list, (p.items || []).length ? tbl : empty(`No ${state} alert. Alerts are raised by alert rules over threats.`));
  if (params.get('id')) await detail(panel, params.get('id'), { ...ctx, state });
  return live.subscribe('alerts', (a) => {
    if (a.gap || a.state !== state || !a.id) return;
    if (!tbl.isConnected) fill(list, tbl);
    tbl.addRow(a, true).classList.add('fresh');
  });
}
