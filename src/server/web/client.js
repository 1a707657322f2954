// The JSON API as the page uses it. Every call carries the access token (sessionStorage, sent as
// `Authorization: Bearer …`) once one is known; a 401 calls the page's unauthorized handler and
// rejects with an ApiError, and any other failure rejects with the server's own
// `{error: {code, message}}` so the page can show it as given.

const TOKEN_KEY = 'clipfit.token';

export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  } catch {
    return '';
  }
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

let unauthorized = () => {};
/** Called with the ApiError whenever the server answers 401. */
export function onUnauthorized(fn) {
  unauthorized = fn;
}

function authHeaders(extra = {}) {
  const token = getToken();
  return token ? { ...extra, authorization: `Bearer ${token}` } : extra;
}

async function errorOf(res) {
  let code = `HTTP_${res.status}`;
  let message = `${res.status} ${res.statusText}`;
  try {
    const body = await res.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(res.status, code, message);
}

/**
 * Call the API. `json` is sent as a JSON body, `form` (FormData) as multipart; the answer is parsed
 * as JSON (or returned as a Blob when `blob` is set).
 * @param {string} path
 * @param {{method?: string, json?: unknown, form?: FormData, blob?: boolean, signal?: AbortSignal}} [opts]
 */
export async function api(path, opts = {}) {
  const init = { method: opts.method || (opts.json !== undefined || opts.form ? 'POST' : 'GET'), headers: authHeaders(), signal: opts.signal };
  if (opts.json !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(opts.json);
  } else if (opts.form) {
    init.body = opts.form;
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', `cannot reach the server (${err && err.message ? err.message : err})`);
  }
  if (!res.ok) {
    const err = await errorOf(res);
    if (res.status === 401) unauthorized(err);
    throw err;
  }
  if (opts.blob) return res.blob();
  if (res.status === 204) return null;
  const type = res.headers.get('content-type') || '';
  return type.includes('json') ? res.json() : res.text();
}

/**
 * Point an <img> at an API image. Without a token the browser loads the URL itself; with one the
 * bytes are fetched with the Bearer header (an <img> cannot send it) and shown from an object URL.
 * @param {HTMLImageElement} img @param {string} url
 */
export function loadImage(img, url) {
  if (!getToken()) {
    img.src = url;
    return;
  }
  api(url, { blob: true }).then(
    (blob) => {
      const objectUrl = URL.createObjectURL(blob);
      img.addEventListener('load', () => URL.revokeObjectURL(objectUrl), { once: true });
      img.src = objectUrl;
    },
    () => img.classList.add('broken'),
  );
}
