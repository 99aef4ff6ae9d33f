// The live feed: one WebSocket for every page, opened with a single-use ticket,
// resubscribed and replayed from the last sequence number after a reconnect. Opened
// with `batch=true`: messages that were waiting together arrive as one frame holding a
// JSON array of them (each with its own seq), dispatched one by one in order.
import { api } from './api.js';

const handlers = new Map(); // topic -> Set(fn)
const statusFns = new Set();
let socket = null;
let lastSeq = null;
let retry = 0;
let timer = null;
let stopped = true;
let state = 'offline';
let connectedBefore = false;

function setState(s, detail) {
  state = s;
  for (const fn of statusFns) fn(s, detail);
}

/** Follows the connection state: 'connecting', 'live', 'behind', 'offline'. */
export function onStatus(fn) { statusFns.add(fn); fn(state); return () => statusFns.delete(fn); }

/**
 * Calls `fn(data, message)` for each message of `topic`; `fn({gap: true})` when
 * messages were missed (the page should reload its data). Returns the unsubscribe.
 */
export function subscribe(topic, fn) {
  let set = handlers.get(topic);
  if (!set) {
    set = new Set();
    handlers.set(topic, set);
    send({ subscribe: [topic] });
  }
  set.add(fn);
  return () => {
    set.delete(fn);
    if (set.size === 0) {
      handlers.delete(topic);
      send({ unsubscribe: [topic] });
    }
  };
}

function send(msg) {
  if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(msg));
}

function dispatch(msg) {
  if (msg.seq !== null && msg.seq !== undefined) lastSeq = msg.seq;
  if (msg.topic === 'gap') {
    setState('behind', 'missed updates: reloaded');
    for (const set of handlers.values()) for (const fn of set) fn({ gap: true }, msg);
    setTimeout(() => { if (state === 'behind') setState('live'); }, 3000);
    return;
  }
  const set = handlers.get(msg.topic);
  if (set) for (const fn of set) fn(msg.data, msg);
}

async function connect() {
  if (stopped) return;
  setState('connecting');
  let ticket;
  try {
    ticket = (await api('/api/v1/auth/ws-ticket', { method: 'POST' })).ticket;
  } catch (_) {
    return later();
  }
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const since = lastSeq === null ? '' : `&since=${lastSeq}`;
  const ws = new WebSocket(`${proto}//${location.host}/api/v1/ws?ticket=${encodeURIComponent(ticket)}&batch=true${since}`);
  socket = ws;
  ws.onopen = () => {
    retry = 0;
    const topics = [...handlers.keys()];
    if (topics.length) ws.send(JSON.stringify({ subscribe: topics }));
    setState('live');
    // Back after a cut without having seen any message: there is no sequence number to
    // replay from, so the pages are told to reload their data instead.
    if (connectedBefore && lastSeq === null) dispatch({ seq: null, topic: 'gap', data: {} });
    connectedBefore = true;
  };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    if (Array.isArray(msg)) {
      for (const one of msg) dispatch(one);
    } else {
      dispatch(msg);
    }
  };
  ws.onclose = () => {
    if (socket === ws) socket = null;
    later();
  };
}

function later() {
  if (stopped) return;
  setState('offline');
  const wait = Math.min(30000, 1000 * 2 ** retry);
  retry += 1;
  clearTimeout(timer);
  timer = setTimeout(connect, wait);
}

// The browser knows before the socket does when the network goes: drop the socket at
// once (a half-open one can stay silent for a minute), and reconnect as soon as the
// network is back instead of waiting out the backoff.
window.addEventListener('offline', () => {
  if (stopped || !socket) return;
  const ws = socket;
  socket = null;
  ws.onclose = null;
  ws.onmessage = null;
  ws.close();
  later();
});
window.addEventListener('online', () => {
  if (stopped || socket) return;
  retry = 0;
  clearTimeout(timer);
  connect();
});

/** Opens the feed (after login). */
export function start() {
  if (!stopped) return;
  stopped = false;
  connect();
}

/** Closes the feed (at logout). */
export function stop() {
  stopped = true;
  clearTimeout(timer);
  if (socket) socket.close();
  socket = null;
  lastSeq = null;
  connectedBefore = false;
  setState('offline');
}
