// Settings (admins): detection mode, paranoia and threshold (saved at run time), the
// rules and scenarios loaded, users, API keys and secrets (values masked by the API).
import { h, fill, time, table, empty, failure, kv, field } from '../ui.js';

function detection(card, tuning, rules, { api, navigate }) {
  const msg = h('div', { role: 'status' });
  const form = h('form', { class: 'inline', id: 'detection-form' },
    field('Mode', h('select', { name: 'mode', id: 's-mode' }, ['detect', 'block'].map((m) => h('option', { value: m, selected: tuning.mode === m }, m)))),
    field('Paranoia level (1–4)', h('input', { name: 'paranoia', id: 's-paranoia', type: 'number', min: 1, max: 4, value: tuning.paranoia, required: true })),
    field('Anomaly threshold', h('input', { name: 'threshold', id: 's-threshold', type: 'number', min: 1, value: tuning.threshold, required: true })),
    h('button', { type: 'submit', class: 'primary' }, 'Save'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = { mode: form.elements.namedItem('mode').value, paranoia: Number(form.elements.namedItem('paranoia').value), threshold: Number(form.elements.namedItem('threshold').value) };
    try {
      await api('/api/v1/detection/config', { method: 'PUT', body });
      navigate('settings', { saved: Date.now() });
    } catch (ex) { fill(msg, failure(ex)); }
  });
  fill(card, h('h2', {}, 'Detection'), form, msg,
    kv([['Rules loaded', `${rules.active} active of ${rules.rules} (${rules.exclusions} exclusions)`], ['Rules directory', rules.directory || 'built-in rules only'], ['Last load error', rules.error]]));
}

function scalars(obj) {
  return Object.entries(obj || {}).filter(([, v]) => v === null || typeof v !== 'object').map(([k, v]) => [k.replace(/_/g, ' '), String(v)]);
}

/** Renders the settings page. */
export async function render(root, ctx) {
  const { api } = ctx;
  const det = h('div', { class: 'card', id: 'settings-detection' });
  const scen = h('div', { class: 'card', id: 'settings-scenarios' });
  const users = h('div', { id: 'settings-users' });
  const keys = h('div', { id: 'settings-keys' });
  const secrets = h('div', { id: 'settings-secrets' });
  fill(root, h('div', { class: 'grid2' }, det, scen), h('h2', {}, 'Users'), users, h('h2', {}, 'API keys'), keys, h('h2', {}, 'Secrets'), secrets);
  const get = (p) => api(p).catch((e) => e);
  const [tuning, rules, scenarios, u, k, s] = await Promise.all([get('/api/v1/detection/config'), get('/api/v1/detection/rules'),
    get('/api/v1/scenarios'), get('/api/v1/users'), get('/api/v1/api-keys'), get('/api/v1/secrets')]);
  if (tuning instanceof Error || rules instanceof Error) fill(det, failure(tuning instanceof Error ? tuning : rules));
  else detection(det, tuning, rules, ctx);
  if (scenarios instanceof Error) fill(scen, failure(scenarios));
  else {
    const list = Object.values(scenarios).find((v) => Array.isArray(v)) || [];
    fill(scen, h('h2', {}, 'Behaviour scenarios'), kv(scalars(scenarios)),
      list.length ? h('ul', {}, list.map((x) => h('li', {}, typeof x === 'object' ? (x.name || JSON.stringify(x)) : String(x)))) : null);
  }
  fill(users, u instanceof Error ? failure(u) : table([
    { label: 'Name', cell: (x) => x.username },
    { label: 'Role', cell: (x) => x.role },
    { label: 'State', cell: (x) => (x.disabled ? 'disabled' : x.locked_until ? `locked until ${time(x.locked_until)}` : 'active') },
    { label: 'Created', cell: (x) => time(x.created_at) },
  ], u.items || []));
  fill(keys, k instanceof Error ? failure(k) : (k.items || []).length ? table([
    { label: 'Name', cell: (x) => x.name },
    { label: 'Key starts', cell: (x) => `${x.prefix}…` },
    { label: 'Scopes', cell: (x) => (x.scopes || []).join(', ') },
    { label: 'Last used', cell: (x) => time(x.last_used_at) || 'never' },
    { label: 'State', cell: (x) => (x.revoked_at ? `revoked ${time(x.revoked_at)}` : 'active') },
  ], k.items) : empty('No API key. Create one for a log shipper or a proxy: palisade apikey create --name web1 --scope ingest.'));
  fill(secrets, s instanceof Error ? failure(s) : (s.items || []).length ? table([
    { label: 'Name', cell: (x) => x.name },
    { label: 'Value (masked)', cell: (x) => x.value },
    { label: 'Key', cell: (x) => x.key_id },
  ], s.items) : empty('No secret stored. Channels and feeds read theirs from here (PUT /api/v1/secrets/{name}).'));
  return undefined;
}
