// Settings, access: users (list, create, change role, disable or enable, reset the
// password, delete) and API keys (list, create showing the key once, revoke). Only admins
// see the settings page; the API refuses these calls to anyone else as well.
import { h, fill, time, table, empty, failure, field, formValues } from './ui.js';
import { confirmButton, focusField } from './alerting.js';

const ROLES = ['viewer', 'analyst', 'admin'];
const SCOPES = [['ingest', 'ingest (push events)'], ['check', 'check (ask for decisions)'], ['read', 'read (what a viewer reads)'], ['bouncer', 'bouncer (CrowdSec decision stream)']];

function userState(x) {
  return x.disabled ? 'disabled' : x.locked_until ? `locked until ${time(x.locked_until)}` : 'active';
}

/** Draws the users section into `root`; `me` is the signed-in user. */
export async function users(root, { api, user: me }) {
  const msg = h('div', { role: 'status', id: 'user-msg' });
  const list = h('div', { id: 'user-list' });
  const reset = h('div');
  const create = h('form', { class: 'inline card', id: 'user-form', 'aria-label': 'New user' },
    field('User name', h('input', { name: 'username', id: 'n-username', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}', autocomplete: 'off' })),
    field('Password (12 characters or more)', h('input', { name: 'password', id: 'n-password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' })),
    field('Role', h('select', { name: 'role', id: 'n-role' }, ROLES.map((r) => h('option', { value: r }, r)))),
    h('button', { type: 'submit', class: 'primary' }, 'Create user'));
  fill(root, h('h2', {}, 'Users'), list, reset, h('h3', {}, 'New user'), create, msg);
  const patch = async (x, body, said) => {
    try {
      await api(`/api/v1/users/${x.id}`, { method: 'PATCH', body });
      fill(msg, h('p', {}, said));
      await draw();
    } catch (e) { fill(msg, failure(e)); await draw().catch(() => {}); }
  };
  const resetForm = (x) => {
    const pw = h('input', { name: 'password', id: 'r-password', type: 'password', required: true, minlength: 12, autocomplete: 'new-password' });
    const form = h('form', { class: 'inline card', id: 'password-form', 'aria-label': `New password for ${x.username}` },
      field(`New password for ${x.username} (ends their sessions)`, pw),
      h('button', { type: 'submit', class: 'primary' }, 'Set password'),
      h('button', { type: 'button', onclick: () => fill(reset) }, 'Cancel'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        await api(`/api/v1/users/${x.id}`, { method: 'PATCH', body: { password: pw.value } });
        fill(reset);
        fill(msg, h('p', {}, `Password of ${x.username} set; their sessions are ended.`));
      } catch (ex) { fill(msg, failure(ex)); pw.focus(); }
    });
    fill(reset, form);
    pw.focus();
  };
  const draw = async () => {
    const u = await api('/api/v1/users');
    fill(list, table([
      { label: 'Name', cell: (x) => x.username },
      { label: 'Role', cell: (x) => {
        const sel = h('select', { 'aria-label': `Role of ${x.username}`, 'data-role-of': x.username }, ROLES.map((r) => h('option', { value: r, selected: r === x.role }, r)));
        sel.addEventListener('change', () => patch(x, { role: sel.value }, `${x.username} is now ${sel.value}.`));
        return sel;
      } },
      { label: 'State', cell: (x) => userState(x) },
      { label: 'Created', cell: (x) => time(x.created_at) },
      { label: 'Actions', cell: (x) => h('span', { class: 'row' },
        h('button', { type: 'button', 'aria-label': `${x.disabled ? 'Enable' : 'Disable'} ${x.username}`,
          onclick: () => patch(x, { disabled: !x.disabled }, `${x.username} ${x.disabled ? 'enabled' : 'disabled; their sessions are ended'}.`) }, x.disabled ? 'Enable' : 'Disable'),
        h('button', { type: 'button', 'aria-label': `Reset the password of ${x.username}`, onclick: () => resetForm(x) }, 'Reset password'),
        me && me.name === x.username ? null : confirmButton('Delete', 'Press again to delete', { 'aria-label': `Delete user ${x.username}` }, async () => {
          try {
            await api(`/api/v1/users/${x.id}`, { method: 'DELETE' });
            fill(msg, h('p', {}, `User ${x.username} deleted.`));
            await draw();
          } catch (e) { fill(msg, failure(e)); }
        })) },
    ], u.items || [], null, (x) => ({ 'data-user': x.username })));
  };
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const r = await api('/api/v1/users', { method: 'POST', body: formValues(create) });
      create.reset();
      fill(msg, h('p', {}, `User ${r.username} created as ${r.role}.`));
      await draw();
    } catch (ex) { fill(msg, failure(ex)); focusField(create, ex); }
  });
  try { await draw(); } catch (e) { fill(list, failure(e)); }
}

/** Draws the API keys section into `root`. */
export async function apiKeys(root, { api }) {
  const msg = h('div', { role: 'status', id: 'key-msg' });
  const shown = h('div', { id: 'new-key-box' });
  const list = h('div', { id: 'key-list' });
  const create = h('form', { class: 'inline card', id: 'key-form', 'aria-label': 'New API key' },
    field('Name', h('input', { name: 'name', id: 'k-name', required: true, maxlength: 64, placeholder: 'web1 shipper' })),
    h('fieldset', { class: 'checks' }, h('legend', {}, 'Scopes'), SCOPES.map(([v, l]) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', name: 'scopes', value: v, id: `k-scope-${v}` }), l))),
    h('button', { type: 'submit', class: 'primary' }, 'Create key'));
  fill(root, h('h2', {}, 'API keys'), shown, list, h('h3', {}, 'New API key'), create, msg);
  const draw = async () => {
    const k = await api('/api/v1/api-keys');
    const items = k.items || [];
    fill(list, items.length ? table([
      { label: 'Name', cell: (x) => x.name },
      { label: 'Key starts', cell: (x) => h('code', {}, `${x.prefix}…`) },
      { label: 'Scopes', cell: (x) => (x.scopes || []).join(', ') },
      { label: 'Created', cell: (x) => `${time(x.created_at)}${x.created_by ? ` by ${x.created_by}` : ''}` },
      { label: 'Last used', cell: (x) => time(x.last_used_at) || 'never' },
      { label: 'State', cell: (x) => (x.revoked_at ? `revoked ${time(x.revoked_at)}` : 'active') },
      { label: 'Actions', cell: (x) => (x.revoked_at ? '' : confirmButton('Revoke', 'Press again to revoke', { 'aria-label': `Revoke API key ${x.name}` }, async () => {
        try {
          await api(`/api/v1/api-keys/${x.id}`, { method: 'DELETE' });
          fill(msg, h('p', {}, `API key ${x.name} revoked: it is refused from now on.`));
          fill(shown);
          await draw();
        } catch (e) { fill(msg, failure(e)); }
      })) },
    ], items, null, (x) => ({ 'data-key': x.name })) : empty('No API key. Create one for a log shipper (ingest), a proxy (check) or a bouncer.'));
  };
  create.addEventListener('submit', async (e) => {
    e.preventDefault();
    const scopes = [...create.querySelectorAll('input[name=scopes]:checked')].map((i) => i.value);
    try {
      const r = await api('/api/v1/api-keys', { method: 'POST', body: { name: create.elements.namedItem('name').value, scopes } });
      create.reset();
      fill(shown, h('div', { class: 'card', id: 'new-key' }, h('p', {}, `The key of ${r.name} (${r.scopes.join(', ')}): copy it now, it is not shown again.`),
        h('code', { id: 'new-key-value' }, r.key)));
      fill(msg);
      await draw();
    } catch (ex) { fill(msg, failure(ex)); focusField(create, ex); }
  });
  try { await draw(); } catch (e) { fill(list, failure(e)); }
}
