// Charts drawn by hand in SVG: a time line chart and a bar list. Small on purpose:
// the dashboard needs lines over time and ranked counts, nothing more.
import { h, num } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children) el.append(c);
  return el;
}

/**
 * A line chart of `lines` ([{key, points: [{t, v}]}]) with a time axis; `label`
 * describes it for screen readers, which also get the totals as text.
 */
export function lineChart(lines, label, unit = '') {
  const W = 600; const H = 180; const L = 44; const B = 20; const T = 8; const R = 8;
  const pts = lines.flatMap((l) => l.points || []);
  const ts = pts.map((p) => Date.parse(p.t)).filter((t) => !Number.isNaN(t));
  const t0 = Math.min(...ts); const t1 = Math.max(...ts);
  const vmax = Math.max(1, ...pts.map((p) => Number(p.v) || 0));
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'none' });
  svg.append(s('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
  for (const v of [0, vmax / 2, vmax]) {
    svg.append(s('text', { x: L - 4, y: y(v) + 3, 'text-anchor': 'end' }, num(v, 1) + unit));
    svg.append(s('line', { class: 'axis', x1: L, y1: y(v), x2: W - R, y2: y(v), 'stroke-dasharray': '2 3' }));
  }
  if (ts.length) {
    for (const t of [t0, (t0 + t1) / 2, t1]) {
      const d = new Date(t);
      const txt = t1 - t0 > 86400000 * 1.5 ? d.toLocaleDateString() : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      svg.append(s('text', { x: x(t), y: H - 5, 'text-anchor': 'middle' }, txt));
    }
  }
  lines.forEach((l, i) => {
    const d = (l.points || []).map((p, j) => `${j ? 'L' : 'M'}${x(Date.parse(p.t)).toFixed(1)},${y(Number(p.v) || 0).toFixed(1)}`).join('');
    if (d) svg.append(s('path', { d, class: `l${i % 4}`, fill: 'none', 'stroke-width': 1.5, 'vector-effect': 'non-scaling-stroke' }));
  });
  const legend = lines.length > 1
    ? h('div', { class: 'row muted' }, lines.map((l, i) => h('span', {}, ['—', '- -', '···', '-·-'][i % 4], ' ', l.key || 'all')))
    : null;
  return h('figure', { style: { margin: '0' } }, svg, legend);
}

/** Ranked counts as horizontal bars ([{key, count}]); `onPick(key)` makes keys links. */
export function bars(items, onPick) {
  const max = Math.max(1, ...items.map((i) => i.count));
  return h('div', { role: 'list' }, items.map((i) => h('div', { class: 'bar', role: 'listitem' },
    onPick ? h('a', { href: '#', onclick: (e) => { e.preventDefault(); onPick(i.key); } }, i.key) : h('span', {}, i.key),
    h('span', { class: 'track' }, h('span', { class: 'fill', style: { width: `${(100 * i.count / max).toFixed(1)}%` } })),
    h('span', { class: 'n' }, num(i.count)))));
}
