// The dashboard's entry: session, login page, navigation and the page router.
// Pages are modules listed in pages/index.js; each renders itself into <main> from the
// API's data and subscribes to the live feed, and returns a clean-up function.
import { api, login, logout, hasSession, onSessionEnd, refresh } from './api.js';
import * as live from './live.js';
import { h, fill, failure } from './ui.js';
import { PAGES } from './pages/index.js';

const RANK = { viewer: 1, analyst: 2, admin: 3 };
const main = document.getElementById('main');
const nav = document.getElementById('nav');
let user = null;
let cleanup = null;
let rendering = 0;

/** Whether the signed-in user's role reaches `role`. */
export function allowed(role) { return user && (RANK[user.role] || 0) >= (RANK[role] || 1); }

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [id, q] = raw.split('?');
  return { id: id || 'overview', params: new URLSearchParams(q || '') };
}

/** Goes to a page with parameters (kept in the address so a reload or link keeps them). */
export function navigate(id, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  location.hash = `#/${id}${s ? `?${s}` : ''}`;
}

function showLogin(message) {
  document.getElementById('top').hidden = true;
  live.stop();
  const err = h('div', { role: 'alert', class: message ? 'error' : '' }, message || '');
  const name = h('input', { id: 'username', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { id: 'login-form' },
    h('label', {}, 'User name', name),
    h('label', {}, 'Password', pass),
    h('button', { class: 'primary', type: 'submit' }, 'Log in'), err);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fill(err);
    err.className = '';
    try {
      await login(name.value, pass.value);
      await start();
    } catch (ex) {
      err.className = 'error';
      fill(err, ex.message);
    }
  });
  fill(main, h('section', { class: 'login card' }, h('h1', {}, 'Palisade'), form));
  name.focus();
}

function drawNav(current) {
  fill(nav, PAGES.filter((p) => allowed(p.role)).map((p) => h('a', {
    href: `#/${p.id}`, 'aria-current': p.id === current ? 'page' : null, id: `nav-${p.id}`,
  }, p.title)));
}

async function route() {
  if (!user) return;
  const { id, params } = parseHash();
  const page = PAGES.find((p) => p.id === id) || PAGES[0];
  drawNav(page.id);
  if (cleanup) { try { cleanup(); } catch (_) { /* a page's clean-up must not stop navigation */ } }
  cleanup = null;
  const mine = ++rendering;
  document.title = `${page.title} · Palisade`;
  const root = h('section', { id: `page-${page.id}`, 'aria-labelledby': 'page-title' });
  fill(main, h('h1', { id: 'page-title' }, page.title), root);
  if (!allowed(page.role)) {
    fill(root, failure(new Error(`Your role (${user.role}) cannot see this page.`)));
    return;
  }
  try {
    const mod = await page.load();
    if (mine !== rendering) return;
    const done = await mod.render(root, { api, live, user, params, navigate, allowed });
    if (mine === rendering) cleanup = done || null; else if (done) done();
  } catch (e) {
    if (mine === rendering) fill(root, failure(e));
  }
}

async function start() {
  try {
    user = await api('/api/v1/auth/me');
  } catch (e) {
    user = null;
    showLogin(e.status === 401 ? '' : e.message);
    return;
  }
  document.getElementById('top').hidden = false;
  document.getElementById('who').textContent = `${user.name} (${user.role})`;
  live.start();
  await route();
}

live.onStatus((state, detail) => {
  const el = document.getElementById('live');
  el.textContent = state === 'live' ? 'live' : state === 'behind' ? (detail || 'catching up') : state === 'connecting' ? 'connecting…' : 'offline: reconnecting';
  el.className = `live ${state === 'live' ? 'on' : state === 'behind' ? 'behind' : 'off'}`;
});

onSessionEnd(() => { user = null; showLogin('Your session ended; log in again.'); });
document.getElementById('logout').addEventListener('click', async () => {
  await logout();
  user = null;
  showLogin('');
});
window.addEventListener('hashchange', route);

if (hasSession()) {
  refresh().then(() => start());
} else {
  showLogin('');
}
