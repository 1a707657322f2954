// The page's entry: hash routing (#/ search, #/runs, #/runs/<name>), the server info line, the
// token prompt after a 401, and the shared error banner.

import { api, onUnauthorized, setToken } from './client.js';
import { showRun, showRuns } from './runs.js';
import { initSearch } from './search.js';
import { attempt, server, showError, takeRetry } from './ui.js';
import { initUpload } from './upload.js';

const $ = (id) => document.getElementById(id);

async function loadInfo() {
  const info = await api('/api/info');
  server.info = info;
  const line = [`model ${info.model.id}`];
  if (info.compare) line.push(`compare ${info.compare.id}`);
  $('model-info').textContent = line.join(' · ');
  const toggle = $('compare-toggle');
  toggle.disabled = !info.compare;
  $('compare-hint').textContent = info.compare ? `Compare: ${info.compare.id}` : 'No compare model on this server.';
  if (!info.compare) toggle.checked = false;
  document.dispatchEvent(new CustomEvent('clipfit:info', { detail: info }));
}

function route() {
  const hash = location.hash.replace(/^#/, '') || '/';
  const m = /^\/runs(?:\/(.+))?$/.exec(hash);
  $('view-search').hidden = !!m;
  $('view-runs').hidden = !m;
  for (const a of document.querySelectorAll('[data-nav]')) {
    const on = a.getAttribute('data-nav') === (m ? 'runs' : 'search');
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (m) {
    const name = m[1] ? decodeURIComponent(m[1]) : undefined;
    attempt(() => (name ? showRun($('runs-body'), name) : showRuns($('runs-body'))));
  }
}

function initToken() {
  const form = $('token-form');
  onUnauthorized((err) => {
    $('token-hint').textContent = `${err.message} Enter the token the server was started with (--token).`;
    form.hidden = false;
    $('token-input').focus();
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken($('token-input').value.trim());
    $('token-input').value = '';
    form.hidden = true;
    showError(null);
    const again = takeRetry();
    attempt(loadInfo).then(() => {
      route();
      again();
    });
  });
}

function main() {
  initToken();
  initSearch();
  initUpload();
  window.addEventListener('hashchange', route);
  route();
  attempt(loadInfo);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', main);
else main();
