// Vulnerabilities: assets with their open matches by severity, matches filtered by
// asset, severity and status, one match with its CVE record, and an inventory upload
// (CycloneDX, SPDX, dpkg or rpm; the server detects the format and matches at once).
import { h, fill, time, table, empty, failure, kv, field, formValues, sev } from '../ui.js';

async function detail(panel, id, { api }) {
  try {
    const d = await api(`/api/v1/vulnerabilities/${encodeURIComponent(id)}`);
    const m = d.matched;
    const c = d.cve;
    const desc = c && (c.descriptions || []).find((x) => x.lang === 'en');
    fill(panel, h('div', { class: 'card', id: 'vuln-detail' }, h('h2', {}, `${m.cve_id} on ${m.asset}`),
      kv([['Severity', sev(m.severity)], ['Score', m.score == null ? null : String(m.score)], ['Known exploited', m.kev ? 'yes (CISA KEV)' : 'no'],
        ['Software', `${m.software} ${m.version}`], ['Product', m.product], ['Confidence', m.confidence], ['Status', m.status],
        ['Triage', m.status_comment ? `${m.status_comment} (${m.status_by}, ${time(m.status_at)})` : null],
        ['Published', c ? time(c.published) : null], ['Weaknesses', c ? (c.cwes || []).join(', ') : null]]),
      desc ? h('p', {}, desc.value) : null,
      c ? h('ul', {}, (c.references || []).slice(0, 10).map((r) => h('li', {}, h('code', {}, r.url)))) : null));
  } catch (e) { fill(panel, failure(e)); }
}

/** Renders the vulnerabilities page. */
export async function render(root, ctx) {
  const { api, params, navigate } = ctx;
  const f = {};
  for (const k of ['asset', 'severity', 'status']) if (params.get(k)) f[k] = params.get(k);
  const assets = h('div', { id: 'asset-list' });
  const list = h('div', { id: 'vuln-list' });
  const panel = h('div', { id: 'vuln-panel' });
  const form = h('form', { class: 'filters' },
    field('Asset', h('input', { name: 'asset', id: 'v-asset', value: f.asset || '' })),
    field('Severity', h('select', { name: 'severity', id: 'v-severity' }, ['', 'low', 'medium', 'high', 'critical'].map((v) => h('option', { value: v, selected: (f.severity || '') === v }, v || 'any')))),
    field('Status', h('select', { name: 'status', id: 'v-status' }, ['', 'open', 'accepted', 'fixed'].map((v) => h('option', { value: v, selected: (f.status || '') === v }, v || 'any')))),
    h('button', { type: 'submit', class: 'primary' }, 'Filter'));
  form.addEventListener('submit', (e) => { e.preventDefault(); navigate('vulnerabilities', formValues(form)); });
  let upload = null;
  const upMsg = h('div', { role: 'status', id: 'upload-result' });
  if (ctx.allowed('analyst')) {
    const name = h('input', { name: 'asset', id: 'u-asset', required: true, placeholder: 'web-1', pattern: '\\S+' });
    const file = h('input', { name: 'file', id: 'u-file', type: 'file', required: true });
    upload = h('form', { class: 'inline card', id: 'inventory-upload' }, field('Asset name', name),
      field('Inventory file (CycloneDX, SPDX, dpkg -l, rpm -qa)', file), h('button', { type: 'submit', class: 'primary' }, 'Upload'));
    upload.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = file.files && file.files[0];
      if (!f) return;
      try {
        const r = await api(`/api/v1/assets/${encodeURIComponent(name.value.trim())}/inventory`, { method: 'POST', raw: f });
        fill(upMsg, h('p', {}, `${name.value.trim()}: ${r.items} packages read as ${r.format}, ${r.opened} matches opened.`));
        navigate('vulnerabilities', { asset: name.value.trim(), uploaded: Date.now() });
      } catch (ex) { fill(upMsg, failure(ex)); }
    });
  }
  fill(root, upload, upMsg, h('h2', {}, 'Assets'), assets, h('h2', {}, 'Matches'), form, h('div', { class: 'split' }, list, panel));
  const [a, v] = await Promise.all([
    api('/api/v1/assets', { query: { limit: 100 } }).catch((e) => e),
    api('/api/v1/vulnerabilities', { query: { ...f, limit: 100 } }).catch((e) => e),
  ]);
  if (a instanceof Error) fill(assets, failure(a));
  else if (!(a.items || []).length) fill(assets, empty('No assets yet. Upload an inventory (CycloneDX, SPDX, dpkg or rpm) with POST /api/v1/assets/{name}/inventory, or let the proxy and syslog sources report software.'));
  else fill(assets, table([
    { label: 'Asset', cell: (x) => x.name },
    { label: 'Software', cell: (x) => String(x.software) },
    { label: 'Open matches', cell: (x) => (x.open || []).map((o) => `${o.count} ${o.severity}`).join(', ') || 'none' },
    { label: 'Last seen', cell: (x) => time(x.last_seen) },
  ], a.items, (x) => navigate('vulnerabilities', { asset: x.name })));
  if (v instanceof Error) fill(list, failure(v));
  else if (!(v.items || []).length) fill(list, empty('No match. CVE data comes from the fetch_nvd, fetch_circl or import_cves jobs; match_cves compares it with the assets.'));
  else fill(list, table([
    { label: 'CVE', cell: (m) => m.cve_id },
    { label: 'Asset', cell: (m) => m.asset },
    { label: 'Severity', cell: (m) => sev(m.severity) },
    { label: 'Software', cell: (m) => `${m.software} ${m.version}` },
    { label: 'Status', cell: (m) => m.status },
  ], v.items, (m) => navigate('vulnerabilities', { ...f, id: m.id })));
  if (params.get('id')) await detail(panel, params.get('id'), ctx);
  else fill(panel, empty('Select a match to see its CVE.'));
  return undefined;
}
