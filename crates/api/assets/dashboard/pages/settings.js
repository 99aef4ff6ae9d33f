// Settings (admins): detection mode, paranoia and threshold (saved at run time), the
// rules and scenarios loaded, alert rules and channels (alerting.js), users and API keys
// (access.js) and secrets (values masked by the API).
import { h, fill, table, empty, failure, kv, field } from '../ui.js';
import { alertRules, channels } from '../alerting.js';
import { users, apiKeys } from '../access.js';

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
  const rules = h('section', { id: 'settings-rules' });
  const chans = h('section', { id: 'settings-channels' });
  const people = h('section', { id: 'settings-users' });
  const keys = h('section', { id: 'settings-keys' });
  const secrets = h('div', { id: 'settings-secrets' });
  fill(root, h('nav', { class: 'row', 'aria-label': 'Settings sections' },
    [['settings-detection', 'Detection'], ['settings-rules', 'Alert rules'], ['settings-channels', 'Channels'],
      ['settings-users', 'Users'], ['settings-keys', 'API keys'], ['settings-secrets-title', 'Secrets']]
      .map(([id, l]) => h('a', { href: '#', onclick: (e) => { e.preventDefault(); const t = document.getElementById(id); if (t) { t.scrollIntoView(); t.focus({ preventScroll: true }); } } }, l))),
  h('div', { class: 'grid2' }, det, scen), rules, chans, people, keys,
  h('h2', { id: 'settings-secrets-title', tabindex: -1 }, 'Secrets'), secrets);
  for (const el of [det, rules, chans, people, keys]) el.tabIndex = -1;
  const get = (p) => api(p).catch((e) => e);
  const [tuning, ruleSet, scenarios, s] = await Promise.all([get('/api/v1/detection/config'), get('/api/v1/detection/rules'),
    get('/api/v1/scenarios'), get('/api/v1/secrets')]);
  if (tuning instanceof Error || ruleSet instanceof Error) fill(det, failure(tuning instanceof Error ? tuning : ruleSet));
  else detection(det, tuning, ruleSet, ctx);
  if (scenarios instanceof Error) fill(scen, failure(scenarios));
  else {
    const list = Object.values(scenarios).find((v) => Array.isArray(v)) || [];
    fill(scen, h('h2', {}, 'Behaviour scenarios'), kv(scalars(scenarios)),
      list.length ? h('ul', {}, list.map((x) => h('li', {}, typeof x === 'object' ? (x.name || JSON.stringify(x)) : String(x)))) : null);
  }
  fill(secrets, s instanceof Error ? failure(s) : (s.items || []).length ? table([
    { label: 'Name', cell: (x) => x.name },
    { label: 'Value (masked)', cell: (x) => x.value },
    { label: 'Key', cell: (x) => x.key_id },
  ], s.items) : empty('No secret stored. Channels and feeds read theirs from here (PUT /api/v1/secrets/{name}).'));
  await Promise.all([alertRules(rules, ctx), channels(chans, ctx), users(people, ctx), apiKeys(keys, ctx)]);
  return undefined;
}
