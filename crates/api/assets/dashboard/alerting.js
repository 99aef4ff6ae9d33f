// Settings, alerting: alert rules (list, create, edit, delete) and notification channels
// (list, create, edit, delete, and "send test" showing what the receiver answered). Only
// admins see the settings page; the API refuses these calls to anyone else as well.
import { h, fill, time, table, empty, failure, field } from './ui.js';

const SEVERITIES = ['notice', 'warning', 'error', 'critical'];
const GROUP_FIELDS = [['client_ip', 'client address'], ['category', 'category'], ['source', 'source'],
  ['rule_id', 'first rule id'], ['path', 'request path']];

/** "a, b ,c" → ['a', 'b', 'c']. */
const words = (s) => String(s || '').split(',').map((x) => x.trim()).filter(Boolean);

/** Puts the keyboard on the field a problem names (`spec.window` → the `window` field). */
export function focusField(form, ex) {
  if (!ex || !ex.field) return;
  const el = form.querySelector(`[name="${ex.field.replace(/^spec\./, '')}"]`);
  if (el) el.focus();
}

/**
 * A button that asks for a second press before it acts (no modal dialog: keyboard and
 * screen readers follow it as an ordinary button whose label changes).
 */
export function confirmButton(label, confirmLabel, attrs, act) {
  let armed = false;
  const b = h('button', { type: 'button', class: 'danger', ...attrs }, label);
  b.addEventListener('click', async () => {
    if (!armed) { armed = true; b.textContent = confirmLabel; return; }
    b.disabled = true;
    try { await act(); } finally { b.disabled = false; armed = false; b.textContent = label; }
  });
  b.addEventListener('blur', () => { armed = false; b.textContent = label; });
  return b;
}

function checkboxes(legend, name, options, chosen) {
  return h('fieldset', { class: 'checks' }, h('legend', {}, legend), options.map(([v, l]) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name, value: v, checked: chosen.includes(v) }), l)));
}

const checked = (form, name) => [...form.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);

function ruleForm(rule, channels, { api, msg, done }) {
  const s = (rule && rule.spec) || {};
  const form = h('form', { class: 'inline card', id: 'rule-form', 'aria-label': rule ? `Edit alert rule ${rule.name}` : 'New alert rule' },
    field('Name', h('input', { name: 'name', id: 'r-name', required: true, maxlength: 100, value: rule ? rule.name : '' })),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'enabled', id: 'r-enabled', checked: rule ? rule.enabled : true }), 'Enabled'),
    field('Least severity', h('select', { name: 'min_severity', id: 'r-min_severity' },
      SEVERITIES.map((v) => h('option', { value: v, selected: (s.min_severity || 'warning') === v }, v)))),
    field('Categories (comma-separated; empty: all)', h('input', { name: 'categories', id: 'r-categories', value: (s.categories || []).join(', '), placeholder: 'sqli, xss' })),
    field('Sources (comma-separated; empty: all)', h('input', { name: 'sources', id: 'r-sources', value: (s.sources || []).join(', '), placeholder: 'web, check' })),
    field('Window', h('input', { name: 'window', id: 'r-window', value: s.window || '10m', size: 6, placeholder: '10m' })),
    checkboxes('Group threats by', 'group_by', GROUP_FIELDS, s.group_by || ['client_ip', 'category']),
    channels.length ? checkboxes('Notify (none ticked: every enabled channel)', 'channels', channels.map((c) => [String(c.id), c.name]), (s.channels || []).map(String)) : null,
    h('button', { type: 'submit', class: 'primary' }, rule ? 'Save rule' : 'Create rule'),
    rule ? h('button', { type: 'button', onclick: () => done() }, 'Cancel') : null);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = (n) => form.elements.namedItem(n).value;
    const spec = {
      ...s,
      min_severity: v('min_severity'),
      categories: words(v('categories')),
      sources: words(v('sources')),
      window: v('window').trim() || '10m',
      group_by: checked(form, 'group_by'),
      channels: checked(form, 'channels').map(Number),
    };
    const body = { name: v('name').trim(), enabled: form.elements.namedItem('enabled').checked, spec };
    try {
      const r = rule
        ? await api(`/api/v1/alert-rules/${rule.id}`, { method: 'PUT', body })
        : await api('/api/v1/alert-rules', { method: 'POST', body });
      fill(msg, h('p', {}, `Alert rule ${r.name} ${rule ? 'saved' : 'created'}.`));
      done(r);
    } catch (ex) { fill(msg, failure(ex)); focusField(form, ex); }
  });
  return form;
}

/** Draws the alert rules section into `root`. */
export async function alertRules(root, { api }) {
  const msg = h('div', { role: 'status', id: 'rule-msg' });
  const list = h('div', { id: 'rule-list' });
  const box = h('div');
  fill(root, h('h2', {}, 'Alert rules'), list, box, msg);
  let channels = [];
  const draw = async (editing) => {
    const [r, c] = await Promise.all([api('/api/v1/alert-rules'), api('/api/v1/channels').catch(() => ({ items: [] }))]);
    channels = c.items || [];
    const names = new Map(channels.map((x) => [x.id, x.name]));
    const items = r.items || [];
    fill(list, items.length ? table([
      { label: 'Name', cell: (x) => x.name },
      { label: 'State', cell: (x) => (x.enabled ? 'enabled' : 'disabled') },
      { label: 'Least severity', cell: (x) => x.spec.min_severity },
      { label: 'Takes', cell: (x) => [(x.spec.categories || []).join(', ') || 'all categories', (x.spec.sources || []).join(', ') || 'all sources'].join('; ') },
      { label: 'Grouped by', cell: (x) => `${(x.spec.group_by || []).join(', ') || 'one group'} over ${x.spec.window}` },
      { label: 'Notifies', cell: (x) => ((x.spec.channels || []).length ? x.spec.channels.map((id) => names.get(id) || `#${id}`).join(', ') : 'every enabled channel') },
      { label: 'Origin', cell: (x) => x.origin },
      { label: 'Actions', cell: (x) => h('span', { class: 'row' },
        h('button', { type: 'button', 'aria-label': `Edit alert rule ${x.name}`, onclick: () => draw(x).catch((e) => fill(msg, failure(e))) }, 'Edit'),
        confirmButton('Delete', 'Press again to delete', { 'aria-label': `Delete alert rule ${x.name}` }, async () => {
          try {
            await api(`/api/v1/alert-rules/${x.id}`, { method: 'DELETE' });
            fill(msg, h('p', {}, `Alert rule ${x.name} deleted.`));
            await draw(null);
          } catch (e) { fill(msg, failure(e)); }
        })) },
    ], items, null, (x) => ({ 'data-rule': x.name })) : empty('No alert rule: threats are stored but raise no alert. Create one below.'));
    const form = ruleForm(editing, channels, { api, msg, done: () => draw(null).catch((e) => fill(msg, failure(e))) });
    fill(box, h('h3', {}, editing ? `Edit ${editing.name}` : 'New alert rule'), form);
    if (editing) form.querySelector('input').focus();
  };
  try { await draw(null); } catch (e) { fill(list, failure(e)); }
}

function target(c) {
  const s = c.spec;
  return s.kind === 'email' ? `${s.host}:${s.port} → ${(s.to || []).join(', ')}` : s.url;
}

function channelForm(channel, { api, msg, secretBox, done }) {
  const s = (channel && channel.spec) || { kind: 'webhook' };
  const kind = h('select', { name: 'kind', id: 'c-kind', disabled: Boolean(channel) },
    [['webhook', 'Webhook (signed)'], ['slack', 'Slack'], ['email', 'E-mail']].map(([v, l]) => h('option', { value: v, selected: s.kind === v }, l)));
  const url = h('div', { class: 'row', 'data-kinds': 'webhook slack' },
    field('URL', h('input', { name: 'url', id: 'c-url', type: 'url', size: 40, value: s.url || '', placeholder: 'the receiver: hooks.example.com/palisade' })));
  const mail = h('div', { class: 'row', 'data-kinds': 'email' },
    field('SMTP host', h('input', { name: 'host', id: 'c-host', value: s.host || '' })),
    field('Port', h('input', { name: 'port', id: 'c-port', type: 'number', min: 1, max: 65535, value: s.port || 587, size: 5 })),
    field('Security', h('select', { name: 'security', id: 'c-security' }, ['starttls', 'tls', 'none'].map((v) => h('option', { value: v, selected: (s.security || 'starttls') === v }, v)))),
    field('User name (empty: no login)', h('input', { name: 'username', id: 'c-username', value: s.username || '', autocomplete: 'off' })),
    field('From', h('input', { name: 'from', id: 'c-from', value: s.from || '', placeholder: 'alerts@example.com' })),
    field('To (comma-separated)', h('input', { name: 'to', id: 'c-to', value: (s.to || []).join(', ') })));
  const secretLabel = h('span', {});
  const secret = h('label', {}, secretLabel, h('input', { name: 'secret', id: 'c-secret', type: 'password', autocomplete: 'new-password' }));
  const form = h('form', { class: 'inline card', id: 'channel-form', 'aria-label': channel ? `Edit channel ${channel.name}` : 'New channel' },
    field('Name', h('input', { name: 'name', id: 'c-name', required: true, maxlength: 100, value: channel ? channel.name : '' })),
    field('Kind', kind),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'enabled', id: 'c-enabled', checked: channel ? channel.enabled : true }), 'Enabled'),
    url, mail, secret,
    h('button', { type: 'submit', class: 'primary' }, channel ? 'Save channel' : 'Create channel'),
    channel ? h('button', { type: 'button', onclick: () => done() }, 'Cancel') : null);
  const show = () => {
    for (const g of [url, mail]) g.hidden = !g.dataset.kinds.split(' ').includes(kind.value);
    secret.hidden = kind.value === 'slack';
    fill(secretLabel, kind.value === 'email' ? 'SMTP password (with a user name; empty keeps the stored one)'
      : channel ? 'Signing secret whsec_… (empty: keep the current one)' : 'Signing secret whsec_… (empty: one is generated)');
  };
  kind.addEventListener('change', show);
  show();
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const v = (n) => form.elements.namedItem(n).value.trim();
    const spec = kind.value === 'email'
      ? { kind: 'email', host: v('host'), port: Number(v('port')) || 587, security: v('security'), from: v('from'), to: words(v('to')), ...(v('username') ? { username: v('username') } : {}), ...(s.ca_pem ? { ca_pem: s.ca_pem } : {}) }
      : { kind: kind.value, url: v('url') };
    const body = { name: v('name'), enabled: form.elements.namedItem('enabled').checked, spec };
    if (kind.value !== 'slack' && form.elements.namedItem('secret').value) body.secret = form.elements.namedItem('secret').value;
    try {
      const r = channel
        ? await api(`/api/v1/channels/${channel.id}`, { method: 'PUT', body })
        : await api('/api/v1/channels', { method: 'POST', body });
      fill(msg, h('p', {}, `Channel ${r.name} ${channel ? 'saved' : 'created'}.`));
      fill(secretBox, r.secret && r.spec.kind === 'webhook' ? h('div', { class: 'card', id: 'channel-secret' },
        h('p', {}, `Signing secret of ${r.name}: give it to the receiver now; it is not shown again.`), h('code', {}, r.secret)) : null);
      done();
    } catch (ex) { fill(msg, failure(ex)); focusField(form, ex); }
  });
  return form;
}

/** Draws the channels section into `root`. */
export async function channels(root, { api }) {
  const msg = h('div', { role: 'status', id: 'channel-msg' });
  const result = h('div', { role: 'status', id: 'channel-test-result', 'aria-live': 'polite' });
  const secretBox = h('div');
  const list = h('div', { id: 'channel-list' });
  const box = h('div');
  fill(root, h('h2', {}, 'Notification channels'), list, result, secretBox, box, msg);
  const test = async (c) => {
    fill(result, h('p', { class: 'muted' }, `Sending a test notification to ${c.name}…`));
    try {
      const r = await api(`/api/v1/channels/${c.id}/test`, { method: 'POST' });
      const at = time(new Date().toISOString());
      fill(result, h('div', { class: r.delivered ? 'card ok' : 'error', 'data-delivered': String(r.delivered) },
        h('strong', {}, r.delivered ? `Delivered to ${c.name}` : `Not delivered to ${c.name}`),
        h('dl', { class: 'kv' },
          h('dt', {}, 'Receiver answered'), h('dd', {}, r.status == null ? 'no HTTP answer' : `HTTP ${r.status}`),
          r.error ? [h('dt', {}, 'Error'), h('dd', {}, r.error)] : null,
          h('dt', {}, 'Message id'), h('dd', {}, h('code', {}, r.message_id)),
          h('dt', {}, 'Sent'), h('dd', {}, at))));
    } catch (e) { fill(result, failure(e)); }
  };
  const draw = async (editing) => {
    const c = await api('/api/v1/channels');
    const items = c.items || [];
    fill(list, items.length ? table([
      { label: 'Name', cell: (x) => x.name },
      { label: 'Kind', cell: (x) => x.spec.kind },
      { label: 'Where', cell: (x) => target(x) },
      { label: 'State', cell: (x) => (x.enabled ? 'enabled' : 'disabled') },
      { label: 'Changed', cell: (x) => time(x.updated_at) },
      { label: 'Actions', cell: (x) => h('span', { class: 'row' },
        h('button', { type: 'button', 'data-action': 'test', 'aria-label': `Send a test notification to ${x.name}`, onclick: () => test(x) }, 'Send test'),
        h('button', { type: 'button', 'aria-label': `Edit channel ${x.name}`, onclick: () => draw(x).catch((e) => fill(msg, failure(e))) }, 'Edit'),
        confirmButton('Delete', 'Press again to delete', { 'aria-label': `Delete channel ${x.name}` }, async () => {
          try {
            await api(`/api/v1/channels/${x.id}`, { method: 'DELETE' });
            fill(msg, h('p', {}, `Channel ${x.name} deleted.`));
            await draw(null);
          } catch (e) { fill(msg, failure(e)); }
        })) },
    ], items, null, (x) => ({ 'data-channel': x.name })) : empty('No channel: alerts are raised but nobody is told. Add a webhook, Slack or e-mail channel below.'));
    const form = channelForm(editing, { api, msg, secretBox, done: () => draw(null).catch((e) => fill(msg, failure(e))) });
    fill(box, h('h3', {}, editing ? `Edit ${editing.name}` : 'New channel'), form);
    if (editing) form.querySelector('input').focus();
  };
  try { await draw(null); } catch (e) { fill(list, failure(e)); }
}
