// Jobs: start one from a form generated from its kind's parameter schema, the queue
// with live states and progress, cancel and retry, and one job's log streamed live
// (the stored lines first, then the `job:<id>` topic; on a gap the log is re-read).
import { h, fill, time, table, empty, failure, kv, field, stateWord } from '../ui.js';

function input(name, spec, required) {
  const id = `p-${name}`;
  const label = `${name}${required ? ' (required)' : ''}${spec.description ? ` — ${spec.description}` : ''}`;
  if (spec.enum) return field(label, h('select', { name, id }, ['', ...spec.enum].map((v) => h('option', { value: v }, v))));
  if (spec.type === 'boolean') return h('label', { class: 'check' }, h('input', { type: 'checkbox', name, id }), label);
  return field(label, h('input', {
    name, id, required, type: spec.type === 'integer' ? 'number' : 'text',
    min: spec.minimum, max: spec.maximum, placeholder: spec.format === 'path' ? '/absolute/path' : null,
  }));
}

function readParams(form, schema) {
  const out = {};
  for (const [name, spec] of Object.entries(schema.properties || {})) {
    const el = form.elements.namedItem(name);
    if (!el) continue;
    if (spec.type === 'boolean') { if (el.checked) out[name] = true; continue; }
    if (el.value === '') continue;
    out[name] = spec.type === 'integer' ? Number(el.value) : el.value;
  }
  return out;
}

function progress(j) {
  return h('span', { class: 'row' }, h('span', { class: 'progress', role: 'progressbar', 'aria-valuenow': j.progress, 'aria-valuemin': 0, 'aria-valuemax': 100 },
    h('span', { style: { width: `${j.progress || 0}%` } })), `${j.progress || 0} %`);
}

async function detail(panel, id, { api, live, allowed, navigate }) {
  const log = h('pre', { id: 'job-log', 'aria-live': 'polite' });
  const head = h('div');
  let last = 0;
  const appendLines = (lines) => {
    for (const l of lines) {
      if (l.id && l.id <= last) continue;
      if (l.id) last = l.id;
      log.append(`${time(l.ts || l.at)} [${l.level}] ${l.message}\n`);
    }
    log.scrollTop = log.scrollHeight;
  };
  const readLog = async () => {
    let cursor = null;
    do {
      const p = await api(`/api/v1/jobs/${id}/logs`, { query: cursor ? { cursor, limit: 1000 } : { after: last, limit: 1000 } });
      appendLines(p.items || []);
      cursor = p.next_cursor;
    } while (cursor);
  };
  const drawHead = (j) => fill(head, h('h2', {}, `Job ${j.id}: ${j.kind}`), kv([
    ['State', stateWord(j.state)], ['Progress', progress(j)], ['Step', j.progress_message], ['Attempt', `${j.attempt} of ${j.max_attempts}`],
    ['Error', j.error], ['Parameters', h('code', {}, JSON.stringify(j.params))], ['Submitted', `${time(j.created_at)} by ${j.created_by}`],
    ['Started', time(j.started_at)], ['Finished', time(j.finished_at)]]),
  h('div', { class: 'row' },
    allowed('analyst') && ['pending', 'running'].includes(j.state) ? h('button', { type: 'button', class: 'danger', id: 'job-cancel',
      onclick: () => api(`/api/v1/jobs/${j.id}/cancel`, { method: 'POST' }).then(() => reload()).catch((e) => head.append(failure(e))) }, 'Cancel') : null,
    allowed('analyst') && ['failed', 'cancelled'].includes(j.state) ? h('button', { type: 'button',
      onclick: () => api(`/api/v1/jobs/${j.id}/retry`, { method: 'POST' }).then(() => navigate('jobs', { id: j.id, _: Date.now() })).catch((e) => head.append(failure(e))) }, 'Retry') : null));
  const reload = async () => drawHead(await api(`/api/v1/jobs/${id}`));
  fill(panel, h('div', { class: 'card', id: 'job-detail' }, head, h('h2', {}, 'Log'), log));
  // Every live event of the job (a log line, a state, progress) asks for what was
  // stored after the last line shown: lines arrive in order, once, and nothing
  // written between the first read and the subscription is missed.
  let pending = null;
  let reading = Promise.resolve();
  const catchUp = () => {
    clearTimeout(pending);
    pending = setTimeout(() => {
      reading = reading.then(() => Promise.all([readLog(), reload()])).catch(() => {});
    }, 200);
  };
  const off = live.subscribe(`job:${id}`, catchUp);
  try {
    await reload();
    reading = readLog();
    await reading;
  } catch (e) {
    fill(panel, failure(e));
  }
  catchUp();
  return () => { clearTimeout(pending); off(); };
}

/** Renders the jobs page. */
export async function render(root, ctx) {
  const { api, live, params, navigate, allowed } = ctx;
  const msg = h('div', { role: 'status' });
  const starter = h('div', { class: 'card', id: 'job-start' });
  const list = h('div', { id: 'job-list' });
  const panel = h('div', { id: 'job-panel' });
  fill(root, allowed('analyst') ? starter : null, msg, h('div', { class: 'split' }, list, panel));

  if (allowed('analyst')) {
    try {
      const kinds = (await api('/api/v1/jobs/kinds')).items || [];
      const choose = h('select', { id: 'job-kind', name: 'kind' }, kinds.map((k) => h('option', { value: k.name }, k.name)));
      const fields = h('div', { class: 'row' });
      const about = h('p', { class: 'muted' });
      const form = h('form', { class: 'inline', id: 'job-form' }, field('Kind', choose), fields, h('button', { type: 'submit', class: 'primary' }, 'Start'));
      const draw = () => {
        const k = kinds.find((x) => x.name === choose.value);
        if (!k) return;
        const req = new Set(k.params_schema.required || []);
        fill(fields, Object.entries(k.params_schema.properties || {}).map(([n, s]) => input(n, s, req.has(n))));
        fill(about, k.description);
      };
      choose.addEventListener('change', draw);
      draw();
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const k = kinds.find((x) => x.name === choose.value);
        try {
          const j = await api('/api/v1/jobs', { method: 'POST', body: { kind: k.name, params: readParams(form, k.params_schema) } });
          fill(msg);
          navigate('jobs', { id: (j.job || j).id });
        } catch (ex) { fill(msg, failure(ex)); }
      });
      fill(starter, h('h2', {}, 'Start a job'), form, about);
    } catch (e) { fill(starter, failure(e)); }
  }

  const drawList = async () => {
    const p = await api('/api/v1/jobs', { query: { limit: 50 } });
    const rows = p.items || [];
    fill(list, rows.length ? table([
      { label: 'Id', cell: (j) => String(j.id) },
      { label: 'Kind', cell: (j) => j.kind },
      { label: 'State', cell: (j) => stateWord(j.state) },
      { label: 'Progress', cell: progress },
      { label: 'Submitted', cell: (j) => time(j.created_at) },
    ], rows, (j) => navigate('jobs', { id: j.id }), (j) => ({ 'data-job-id': j.id }))
      : empty('No jobs yet. Start one above: import_logs reads a log file, validate_data checks the store.'));
  };
  try { await drawList(); } catch (e) { fill(list, failure(e)); }
  let pending = null;
  const offJobs = live.subscribe('jobs', (e) => {
    if (e.type === 'log') return;
    clearTimeout(pending);
    pending = setTimeout(() => drawList().catch(() => {}), 300);
  });
  const offDetail = params.get('id') ? await detail(panel, Number(params.get('id')), ctx) : (fill(panel, empty('Select a job to follow its log.')), null);
  return () => { clearTimeout(pending); offJobs(); if (offDetail) offDetail(); };
}
