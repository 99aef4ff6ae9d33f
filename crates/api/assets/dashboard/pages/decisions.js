// Decisions: bans and allow-list entries in force (or past), adding one with a
// duration, and removing one. Analysts and admins may change them; the API enforces it.
import { h, fill, time, table, empty, failure, field, formValues } from '../ui.js';

/** Renders the decisions page. */
export async function render(root, { api, params, navigate, allowed }) {
  const f = { active: params.get('active') || 'true', ip: params.get('ip') || '', kind: params.get('kind') || '' };
  const filters = h('form', { class: 'filters', id: 'decision-filters' },
    field('Show', h('select', { name: 'active', id: 'f-active' }, [['true', 'In force'], ['false', 'Ended'], ['any', 'All']]
      .map(([v, l]) => h('option', { value: v, selected: f.active === v }, l)))),
    field('Kind', h('select', { name: 'kind', id: 'f-kind' }, [['', 'any'], ['ban', 'ban'], ['allow', 'allow']]
      .map(([v, l]) => h('option', { value: v, selected: f.kind === v }, l)))),
    field('Address (and ranges holding it)', h('input', { name: 'ip', id: 'f-ip', value: f.ip })),
    h('button', { type: 'submit' }, 'Show'));
  filters.addEventListener('submit', (e) => { e.preventDefault(); navigate('decisions', formValues(filters)); });

  const msg = h('div', { role: 'status' });
  let add = null;
  if (allowed('analyst')) {
    add = h('form', { class: 'inline card', id: 'decision-add' },
      field('Kind', h('select', { name: 'kind', id: 'd-kind' }, h('option', { value: 'ban' }, 'ban'), h('option', { value: 'allow' }, 'allow-list'))),
      field('Address or CIDR', h('input', { name: 'value', id: 'd-value', required: true, value: params.get('value') || '', placeholder: '203.0.113.7 or 203.0.113.0/24' })),
      field('Duration (empty: 4h for a ban, forever for allow)', h('input', { name: 'duration', id: 'd-duration', placeholder: '4h, 7d, 30m' })),
      field('Reason', h('input', { name: 'reason', id: 'd-reason', value: params.get('reason') || '' })),
      h('button', { type: 'submit', class: 'primary' }, 'Add'));
    add.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = formValues(add);
      try {
        const r = await api('/api/v1/decisions', { method: 'POST', body });
        fill(msg, h('p', {}, `${r.kind} on ${r.value}: ${r.outcome}.`));
        navigate('decisions', { active: 'true', _: Date.now() });
      } catch (ex) {
        fill(msg, failure(ex));
        if (ex.field) { const el = add.querySelector(`[name="${ex.field}"]`); if (el) el.focus(); }
      }
    });
  }
  const list = h('div', { id: 'decision-list' });
  fill(root, add, msg, filters, list);

  const q = { active: f.active, ip: f.ip, kind: f.kind, limit: 200 };
  try {
    const p = await api('/api/v1/decisions', { query: q });
    const rows = p.items || [];
    if (!rows.length) {
      fill(list, empty(f.active === 'true'
        ? 'No ban or allow-list entry is in force. Add one above, or let the behaviour scenarios ban scanners.'
        : 'No decision matches.'));
      return undefined;
    }
    fill(list, table([
      { label: 'Kind', cell: (d) => d.kind },
      { label: 'Value', cell: (d) => d.value },
      { label: 'Origin', cell: (d) => d.origin },
      { label: 'Reason', cell: (d) => d.scenario || '' },
      { label: 'Created', cell: (d) => time(d.created_at) },
      { label: 'Until', cell: (d) => (d.expires_at ? time(d.expires_at) : 'no end') },
      { label: 'State', cell: (d) => (d.active ? 'in force' : 'ended') },
      { label: '', cell: (d) => (allowed('analyst') && d.active ? h('button', {
        type: 'button', class: 'danger', 'aria-label': `Remove ${d.kind} on ${d.value}`,
        onclick: async () => {
          try {
            await api(`/api/v1/decisions/${d.id}`, { method: 'DELETE' });
            navigate('decisions', { ...f, _: Date.now() });
          } catch (ex) { fill(msg, failure(ex)); }
        },
      }, 'Remove') : '') },
    ], rows, null, (d) => ({ 'data-decision': d.value })));
  } catch (e) {
    fill(list, failure(e));
  }
  return undefined;
}
