// Overview: live tiles (requests/s, blocked/s, active alerts, compliance score),
// stored totals and charts over a chosen range, threats by category, latest threats.
import { h, fill, num, empty, failure, time, sev, table } from '../ui.js';
import { lineChart, bars } from '../chart.js';

const RANGES = [['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days']];

function tile(id, label, value, note) {
  return h('div', { class: 'tile' }, h('div', { class: 'k' }, label),
    h('div', { class: 'v', 'data-figure': id }, value), note ? h('div', { class: 'k' }, note) : null);
}

/** Renders the overview. */
export async function render(root, { api, live, params, navigate, allowed }) {
  const range = RANGES.some(([r]) => r === params.get('range')) ? params.get('range') : '24h';
  const bucket = range === '1h' ? 'minute' : 'hour';
  const select = h('select', { id: 'range', name: 'range' }, RANGES.map(([v, l]) => h('option', { value: v, selected: v === range }, l)));
  select.addEventListener('change', () => navigate('overview', { range: select.value }));
  const liveTiles = h('div', { class: 'tiles', id: 'live-tiles' });
  const totals = h('div', { class: 'tiles', id: 'totals' });
  const charts = h('div', { class: 'grid2' });
  const lists = h('div', { class: 'grid2' });
  fill(root, h('form', { class: 'filters' }, h('label', {}, 'Range', select)),
    h('h2', {}, 'Now'), liveTiles, h('h2', {}, 'Stored in the range'), totals, charts, lists);

  const optional = (p) => p.catch((e) => e);
  const drawLive = (rt, alerts, posture) => {
    const nowTiles = [
      tile('rps', 'Requests/s (check + proxy + logs)', rt instanceof Error ? '–' : num(rt.requests_per_sec.total, 2),
        rt instanceof Error ? 'no sample yet' : `over ${num(rt.window_secs)} s`),
      tile('blocked-ps', 'Blocked/s', rt instanceof Error ? '–' : num(rt.blocked_per_sec, 2)),
      tile('check-p99', 'Check latency p99', rt instanceof Error || !rt.latency || !rt.latency.check || rt.latency.check.p99_ms == null
        ? '–' : `${num(rt.latency.check.p99_ms, 2)} ms`),
    ];
    if (alerts !== undefined) {
      nowTiles.push(alerts instanceof Error
        ? tile('alerts-active', 'Active alerts', '–', alerts.status === 404 ? 'alerts not available' : alerts.message)
        : tile('alerts-active', 'Active alerts', num((alerts.items || []).length) + (alerts.next_cursor ? '+' : '')));
    }
    if (posture !== undefined) {
      nowTiles.push(tile('score', 'Compliance score', posture instanceof Error || posture.score == null ? '–' : `${posture.score} %`,
        posture instanceof Error ? posture.message : posture.score == null ? 'no posture run yet' : null));
    }
    fill(liveTiles, nowTiles);
  };

  let lastAlerts; let lastPosture;
  const load = async () => {
    const [o, rt, req, thr, lat, alerts, posture, latest] = await Promise.all([
      api('/api/v1/analytics/overview', { query: { range } }),
      optional(api('/api/v1/metrics/realtime')),
      api('/api/v1/analytics/timeseries', { query: { metric: 'http_requests', bucket, range } }),
      api('/api/v1/analytics/timeseries', { query: { metric: 'threats', bucket, range } }),
      optional(api('/api/v1/analytics/timeseries', { query: { metric: 'check_latency_p99', bucket, range } })),
      allowed('analyst') ? optional(api('/api/v1/alerts', { query: { state: 'active', limit: 100 } })) : Promise.resolve(undefined),
      allowed('analyst') ? optional(api('/api/v1/posture')) : Promise.resolve(undefined),
      api('/api/v1/threats', { query: { limit: 8 } }),
    ]);
    lastAlerts = alerts; lastPosture = posture;
    drawLive(rt, alerts, posture);
    fill(totals,
      tile('events-total', 'Events', num(o.events.total)),
      tile('http-requests', 'HTTP requests', num(o.http.requests)),
      tile('http-errors', 'HTTP errors (4xx/5xx)', num(o.http.errors)),
      tile('threats-total', 'Threats', num(o.threats.total)),
      tile('threats-blocked', 'Threats blocked', num(o.threats.blocked)),
      tile('live-requests', 'Requests judged live', num(o.live.requests)));
    const chart = (title, ts, unit) => h('div', { class: 'card' }, h('h2', {}, title),
      (ts.lines || []).some((l) => (l.points || []).some((p) => p.v)) ? lineChart(ts.lines, title, unit)
        : empty('Nothing in this range yet.'));
    fill(charts,
      chart('HTTP requests', req),
      chart('Threats', thr),
      lat instanceof Error ? h('div', { class: 'card' }, failure(lat)) : chart('Check latency p99', lat, ' ms'));
    const cats = (o.threats.by_category || []).slice().sort((a, b) => b.count - a.count);
    fill(lists,
      h('div', { class: 'card' }, h('h2', {}, 'Threats by category'),
        cats.length ? bars(cats, (c) => navigate('threats', { category: c, range })) : empty('No threats in this range.')),
      h('div', { class: 'card' }, h('h2', {}, 'Latest threats'),
        (latest.items || []).length
          ? table([
            { label: 'Time', cell: (t) => time(t.ts) },
            { label: 'Severity', cell: (t) => sev(t.severity) },
            { label: 'Category', cell: (t) => t.category },
            { label: 'Client', cell: (t) => t.client_ip || '' },
          ], latest.items, (t) => navigate('threats', { id: t.id }))
          : empty('No threats yet.')),
      alerts === undefined || alerts instanceof Error ? null : h('div', { class: 'card' }, h('h2', {}, 'Latest active alerts'),
        (alerts.items || []).length
          ? table([
            { label: 'Last seen', cell: (a) => time(a.last_seen) },
            { label: 'Severity', cell: (a) => sev(a.severity) },
            { label: 'Alert', cell: (a) => a.title },
          ], alerts.items.slice(0, 8), (a) => navigate('alerts', { id: a.id }))
          : empty('No active alert.')));
    if (o.events.total === 0) {
      totals.after(empty('No traffic yet — point Palisade at an nginx log: add a [[sources]] entry with path = "/var/log/nginx/access.log" to palisade.toml, push lines to POST /api/v1/ingest, or start an import_logs job on the Jobs page.'));
    }
  };

  try {
    await load();
  } catch (e) {
    fill(root, failure(e));
    return undefined;
  }
  if (!performance.getEntriesByName('palisade:overview-rendered').length) performance.mark('palisade:overview-rendered');

  let pending = null;
  const reload = () => {
    clearTimeout(pending);
    pending = setTimeout(() => load().catch(() => {}), 1500);
  };
  const offMetrics = live.subscribe('metrics', (rt) => {
    if (rt.gap) reload(); else if (rt.requests_per_sec) drawLive(rt, lastAlerts, lastPosture);
  });
  const offThreats = live.subscribe('threats', reload);
  const offAlerts = live.subscribe('alerts', reload);
  return () => { clearTimeout(pending); offMetrics(); offThreats(); offAlerts(); };
}
