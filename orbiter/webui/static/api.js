// The operator API, as the CLI uses it: JSON over HTTP with an optional bearer token.
// GETs send back the ETag of the last answer (If-None-Match); a 304 means nothing changed,
// so a poll costs the master no serialising for the wire and the page no re-rendering.

const TOKEN_KEY = "orbiter.token";
const cache = new Map(); // path -> {etag, data}
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  cache.clear();
}

/** Called with (status, message) when the API refuses us for want of credentials. */
export function onUnauthorized(fn) {
  listeners.add(fn);
}

function headers(extra = {}) {
  const h = { Accept: "application/json", ...extra };
  const t = token();
  if (t) h.Authorization = `Bearer ${t}`;
  return h;
}

async function failure(resp) {
  let message = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    message = body.error || message;
  } catch {
    // not JSON: keep the status line
  }
  if (resp.status === 401) for (const fn of listeners) fn(resp.status, message);
  return new ApiError(resp.status, message);
}

/** GET a JSON document: {data, changed}; changed is false when the master answered 304. */
export async function get(path) {
  const known = cache.get(path);
  const h = headers();
  if (known) h["If-None-Match"] = known.etag;
  const resp = await fetch(path, { headers: h, cache: "no-store" });
  if (resp.status === 304 && known) return { data: known.data, changed: false };
  if (!resp.ok) throw await failure(resp);
  const data = await resp.json();
  const etag = resp.headers.get("ETag");
  if (etag) cache.set(path, { etag, data });
  return { data, changed: true };
}

/** Prometheus's API answers {status, data}; this unwraps data or throws its error. */
export async function prom(path) {
  const resp = await fetch(path, { headers: headers(), cache: "no-store" });
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new ApiError(resp.status, `${resp.status} ${resp.statusText}`);
  }
  if (resp.status === 401) for (const fn of listeners) fn(401, body.error);
  if (!resp.ok || body.status === "error") throw new ApiError(resp.status, body.error || resp.statusText);
  return body.data;
}

export async function send(method, path, body) {
  const init = { method, headers: headers(), cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (!resp.ok) throw await failure(resp);
  const text = await resp.text();
  return text ? JSON.parse(text) : null;
}

/** Raw bytes (an ArrayBuffer) of a sandbox read; the caller decodes them as a stream. */
export async function bytes(path) {
  const resp = await fetch(path, { headers: headers(), cache: "no-store" });
  if (!resp.ok) throw await failure(resp);
  return resp.arrayBuffer();
}
