// Overview: live tiles (requests/s, blocked/s, active alerts, compliance score),
// stored totals and charts over a chosen range, threats by category, latest threats.
import { h, fill, num, empty, failure, time, sev, table, field, instant, localValue } from '../ui.js';
import { lineChart, bars } from '../chart.js';

const RANGES = [['1h', 'Last hour'], ['24h', 'Last 24 hours'], ['7d', 'Last 7 days'], ['30d', 'Last 30 days'],
  ['all', 'All stored data'], ['custom', 'Dates…']];
const DAY = 86400000;
/** The longest period the analytics API answers (400 days). */
const LONGEST = 400 * DAY;

/**
 * The period to show as API query parameters: a preset window ending now; `custom`
 * from/to dates; `all` the 400 days (the API's longest period) up to the newest stored
 * event or threat, so that imported logs of any year are shown.
 */
async function period(api, range, params) {
  if (range === 'custom') {
    const from = instant(params.get('from'));
    const to = instant(params.get('to'));
    if (from && to) return { from, to };
    return null;
  }
  if (range !== 'all') return { range };
  const [e, t] = await Promise.all([api('/api/v1/events', { query: { limit: 1 } }), api('/api/v1/threats', { query: { limit: 1 } })]);
  const newest = Math.max(...[...(e.items || []), ...(t.items || [])].map((x) => Date.parse(x.ts)).filter((n) => !Number.isNaN(n)));
  if (!Number.isFinite(newest)) return { range: '24h' };
  const to = Math.ceil((newest + 1) / 3600000) * 3600000;
  return { from: new Date(to - LONGEST).toISOString(), to: new Date(to).toISOString() };
}

/** Leaves out the empty buckets before the first and after the last non-zero one. */
function trim(ts) {
  const lines = ts.lines || [];
  const n = Math.max(0, ...lines.map((l) => (l.points || []).length));
  let first = n; let last = -1;
  for (const l of lines) {
    (l.points || []).forEach((p, i) => { if (Number(p.v)) { first = Math.min(first, i); last = Math.max(last, i); } });
  }
  if (last < 0) return ts;
  return { ...ts, lines: lines.map((l) => ({ ...l, points: (l.points || []).slice(Math.max(0, first - 1), last + 2) })) };
}

function tile(id, label, value, note) {
  return h('div', { class: 'tile' }, h('div', { class: 'k' }, label),
    h('div', { class: 'v', 'data-figure': id }, value), note ? h('div', { class: 'k' }, note) : null);
}

/** Renders the overview. */
export async function render(root, { api, live, params, navigate, allowed }) {
  const range = RANGES.some(([r]) => r === params.get('range')) ? params.get('range') : '24h';
  const select = h('select', { id: 'range', name: 'range' }, RANGES.map(([v, l]) => h('option', { value: v, selected: v === range }, l)));
  const fromIn = h('input', { type: 'datetime-local', name: 'from', id: 'range-from', value: localValue(params.get('from')), required: true });
  const toIn = h('input', { type: 'datetime-local', name: 'to', id: 'range-to', value: localValue(params.get('to')), required: true });
  const dates = h('span', { class: 'row', hidden: range !== 'custom' }, field('From', fromIn), field('To', toIn),
    h('button', { type: 'submit', class: 'primary' }, 'Show'));
  const rangeForm = h('form', { class: 'filters', id: 'range-form' }, field('Range', select), dates);
  select.addEventListener('change', () => {
    if (select.value === 'custom') { dates.hidden = false; fromIn.focus(); } else navigate('overview', { range: select.value });
  });
  rangeForm.addEventListener('submit', (e) => {
    e.preventDefault();
    navigate('overview', { range: 'custom', from: instant(fromIn.value), to: instant(toIn.value) });
  });
  const liveTiles = h('div', { class: 'tiles', id: 'live-tiles' });
  const totals = h('div', { class: 'tiles', id: 'totals' });
  const shownPeriod = h('p', { class: 'muted', id: 'period' });
  const charts = h('div', { class: 'grid2' });
  const lists = h('div', { class: 'grid2' });
  fill(root, rangeForm, h('h2', {}, 'Now'), liveTiles, h('h2', {}, 'Stored in the range'), shownPeriod, totals, charts, lists);
  let q;
  try { q = await period(api, range, params); } catch (e) { fill(root, rangeForm, failure(e)); return undefined; }
  if (!q) { fill(shownPeriod, 'Pick the first and last day to show, then Show.'); fromIn.focus(); return undefined; }
  const bucket = range === '1h' ? 'minute' : range === 'all' || range === 'custom' ? undefined : 'hour';
  const series = (ts) => (range === 'all' ? trim(ts) : ts);

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
      api('/api/v1/analytics/overview', { query: q }),
      optional(api('/api/v1/metrics/realtime')),
      api('/api/v1/analytics/timeseries', { query: { metric: 'http_requests', bucket, ...q } }),
      api('/api/v1/analytics/timeseries', { query: { metric: 'threats', bucket, ...q } }),
      optional(api('/api/v1/analytics/timeseries', { query: { metric: 'check_latency_p99', bucket, ...q } })),
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
    fill(shownPeriod, `${time(o.from)} to ${time(o.to)}${range === 'all' ? ' (all stored data, up to 400 days before the newest)' : ''}`);
    fill(charts,
      chart('HTTP requests', series(req)),
      chart('Threats', series(thr)),
      lat instanceof Error ? h('div', { class: 'card' }, failure(lat)) : chart('Check latency p99', series(lat), ' ms'));
    const cats = (o.threats.by_category || []).slice().sort((a, b) => b.count - a.count);
    fill(lists,
      h('div', { class: 'card' }, h('h2', {}, 'Threats by category'),
        cats.length ? bars(cats, (c) => navigate('threats', { category: c, range: q.range })) : empty('No threats in this range.')),
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
