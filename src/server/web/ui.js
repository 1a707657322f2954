// What every view shares: the error banner, the retry-after-token hook and the server's info.

import { ApiError } from './client.js';

const $ = (id) => document.getElementById(id);

/** What to do again once a token is given (the call that got the 401). */
let retry = () => {};

/** Take the pending retry (and clear it). */
export function takeRetry() {
  const r = retry;
  retry = () => {};
  return r;
}

export function showError(err) {
  const box = $('error');
  if (!err) {
    box.hidden = true;
    box.textContent = '';
    return;
  }
  if (err.name === 'AbortError') return;
  box.textContent = err instanceof ApiError ? `${err.message} (${err.code})` : String(err.message || err);
  box.hidden = false;
}

/** Run `fn`, showing its error; a 401 keeps it as the retry for after the token prompt. */
export async function attempt(fn) {
  try {
    showError(null);
    return await fn();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) retry = () => attempt(fn);
    showError(err);
    return undefined;
  }
}

/** The server's models, as GET /api/info reports them; null until known. */
export const server = { info: null };

