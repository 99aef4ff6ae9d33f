// Posture: the compliance score, each check's latest result with its fix, the score
// history, and running the checks now.
import { h, fill, time, table, empty, failure, stateWord, sev } from '../ui.js';
import { lineChart } from '../chart.js';

/** Renders the posture page. */
export async function render(root, { api, navigate }) {
  const msg = h('div', { role: 'status' });
  const run = h('button', { type: 'button', class: 'primary', id: 'posture-run' }, 'Run all checks now');
  run.addEventListener('click', async () => {
    run.disabled = true;
    try { await api('/api/v1/posture/run', { method: 'POST' }); navigate('posture', { _: Date.now() }); } catch (e) { fill(msg, failure(e)); run.disabled = false; }
  });
  const p = await api('/api/v1/posture');
  const history = (p.history || []).slice().reverse();
  fill(root, h('div', { class: 'row' }, h('div', { class: 'tile' }, h('div', { class: 'k' }, 'Compliance score'),
    h('div', { class: 'v', 'data-figure': 'score' }, p.score == null ? '–' : `${p.score} %`)), run), msg,
  h('h2', {}, 'Checks'),
  (p.checks || []).length ? table([
    { label: 'Check', cell: (c) => c.title },
    { label: 'Result', cell: (c) => stateWord(c.status) },
    { label: 'Severity', cell: (c) => sev(c.severity) },
    { label: 'Found', cell: (c) => c.found },
    { label: 'Fix', cell: (c) => c.fix || '' },
    { label: 'Checked', cell: (c) => time(c.checked_at) },
  ], p.checks) : empty('No posture run yet: press "Run all checks now".'),
  h('h2', {}, 'Score history'),
  history.filter((r) => r.score != null).length > 1
    ? lineChart([{ key: 'score', points: history.filter((r) => r.score != null).map((r) => ({ t: r.finished_at, v: r.score })) }], 'Compliance score over time', ' %')
    : empty('The history appears after two runs.'),
  history.length ? table([
    { label: 'Finished', cell: (r) => time(r.finished_at) },
    { label: 'Cause', cell: (r) => r.cause },
    { label: 'Score', cell: (r) => (r.score == null ? '–' : `${r.score} %`) },
    { label: 'Passed / warned / failed / skipped', cell: (r) => `${r.passed} / ${r.warned} / ${r.failed} / ${r.skipped}` },
  ], history.slice().reverse()) : null);
  return undefined;
}
