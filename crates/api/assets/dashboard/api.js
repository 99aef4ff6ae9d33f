// The API client: the session's tokens, authorised requests, one refresh at a time.
//
// Where the tokens live: the access token (short-lived) only in this module's memory;
// the refresh token in sessionStorage, so that reloading the tab keeps the session
// but closing the tab ends it. Not localStorage: that would keep a long-lived
// credential on disk, shared by every tab and readable by any script of the origin
// until someone logs out. Not a cookie: the API authenticates by bearer token only.

const REFRESH_KEY = 'palisade.refresh';

let access = null;
let refreshing = null;
const ended = new Set();

/** A problem+json answer (or a network failure) as an error. */
export class ApiError extends Error {
  constructor(status, problem) {
    const detail = (problem && (problem.detail || problem.title)) || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.field = (problem && problem.field) || null;
    this.problem = problem;
  }
}

/** Calls `fn` when the session ends (logout, refresh refused). */
export function onSessionEnd(fn) { ended.add(fn); }

function endSession() {
  access = null;
  sessionStorage.removeItem(REFRESH_KEY);
  for (const fn of ended) fn();
}

function keep(tokens) {
  access = tokens.access_token;
  sessionStorage.setItem(REFRESH_KEY, tokens.refresh_token);
}

async function parse(resp) {
  const type = resp.headers.get('content-type') || '';
  if (resp.status === 204) return null;
  return type.includes('json') ? resp.json() : resp.text();
}

/** Logs in with a name and password. */
export async function login(username, password) {
  const resp = await fetch('/api/v1/auth/login', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  });
  const body = await parse(resp).catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, body);
  keep(body);
}

/** Trades the refresh token for new tokens; one at a time for all callers. */
export function refresh() {
  if (refreshing) return refreshing;
  const token = sessionStorage.getItem(REFRESH_KEY);
  if (!token) return Promise.resolve(false);
  refreshing = (async () => {
    try {
      const resp = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ refresh_token: token }),
      });
      if (resp.status === 401 || resp.status === 400) { endSession(); return false; }
      if (!resp.ok) return false;
      keep(await resp.json());
      return true;
    } catch (_) {
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

/** Whether a session can be resumed (a refresh token is held). */
export function hasSession() { return Boolean(access || sessionStorage.getItem(REFRESH_KEY)); }

/** Logs out (the server revokes the refresh token's family). */
export async function logout() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  try {
    if (access) {
      await fetch('/api/v1/auth/logout', {
        method: 'POST',
        headers: { authorization: `Bearer ${access}`, 'content-type': 'application/json' },
        body: JSON.stringify(token ? { refresh_token: token } : {}),
      });
    }
  } finally {
    endSession();
  }
}

/** Builds `path?query` leaving out empty values. */
export function withQuery(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * An authorised request. A 401 triggers one refresh and one retry, so an expired
 * access token never loses what the user was doing. `body` is sent as JSON, `raw`
 * (a Blob or text) as it is.
 */
export async function api(path, { method = 'GET', body, query, raw } = {}) {
  if (!access) await refresh();
  const send = () => fetch(withQuery(path, query), {
    method,
    headers: {
      ...(access ? { authorization: `Bearer ${access}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    // `raw`: a file's bytes as they are (inventory uploads).
    body: raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined,
  });
  let resp;
  try {
    resp = await send();
    if (resp.status === 401 && (await refresh())) resp = await send();
  } catch (e) {
    throw new ApiError(0, { detail: `the server cannot be reached (${e.message})` });
  }
  const data = await parse(resp).catch(() => null);
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}
