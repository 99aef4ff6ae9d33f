// Health: the detailed health document, readable by a person (database, sources,
// ingest queue, supervised tasks, job queue), refreshed every 5 seconds.
import { h, fill, table, failure, kv, stateWord, num, time } from '../ui.js';

function uptime(s) {
  const d = Math.floor(s / 86400); const hr = Math.floor((s % 86400) / 3600); const m = Math.floor((s % 3600) / 60);
  return `${d ? `${d} d ` : ''}${hr} h ${m} min`;
}

function draw(root, d) {
  const db = d.database || {};
  const q = d.ingest_queue || {};
  fill(root,
    h('div', { class: 'tiles' },
      h('div', { class: 'tile' }, h('div', { class: 'k' }, 'Status'), h('div', { class: 'v', 'data-figure': 'health' }, stateWord(d.status))),
      h('div', { class: 'tile' }, h('div', { class: 'k' }, 'Version'), h('div', { class: 'v' }, d.version)),
      h('div', { class: 'tile' }, h('div', { class: 'k' }, 'Up for'), h('div', { class: 'v' }, uptime(d.uptime_secs || 0))),
      h('div', { class: 'tile' }, h('div', { class: 'k' }, 'Ingest queue'), h('div', { class: 'v' }, `${num(q.depth)} / ${num(q.capacity)}`))),
    (d.reasons || []).length ? h('div', { class: 'error' }, h('strong', {}, 'Why: '), d.reasons.join('; ')) : null,
    h('h2', {}, 'Database'), h('div', { class: 'card' }, kv(Object.entries(db).map(([k, v]) => [k.replace(/_/g, ' '), typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)]))),
    h('h2', {}, 'Sources'),
    (d.sources || []).length ? table([
      { label: 'Name', cell: (s) => s.name },
      { label: 'Kind', cell: (s) => s.kind },
      { label: 'Target', cell: (s) => s.target },
      { label: 'State', cell: (s) => (typeof s.state === 'string' ? stateWord(s.state) : JSON.stringify(s.state)) },
      { label: 'Lines / events / dead letters', cell: (s) => `${num(s.lines)} / ${num(s.events)} / ${num(s.dead_letters)}` },
      { label: 'Last error', cell: (s) => s.last_error || '' },
    ], d.sources) : h('p', { class: 'muted' }, 'No source configured: add [[sources]] or [[syslog]] to palisade.toml, or push to POST /api/v1/ingest.'),
    h('h2', {}, 'Background tasks'),
    table([
      { label: 'Task', cell: (t) => t.name },
      { label: 'State', cell: (t) => stateWord(t.state) },
      { label: 'Restarts', cell: (t) => String(t.restarts ?? '') },
      { label: 'Last error', cell: (t) => t.last_failure ? `${t.last_failure} (${time(t.last_failure_at)})` : '' },
    ], d.tasks || []),
    d.jobs ? [h('h2', {}, 'Job queue'), h('div', { class: 'card' }, kv([...Object.entries(d.jobs.counts || {}).map(([k, v]) => [k, String(v)]), ['running here', String(d.jobs.running_here)]]))] : null);
}

/** Renders the health page. */
export async function render(root, { api }) {
  const load = async () => draw(root, await api('/api/v1/health/detailed'));
  try { await load(); } catch (e) { fill(root, failure(e)); }
  const timer = setInterval(() => load().catch((e) => fill(root, failure(e))), 5000);
  return () => clearInterval(timer);
}
