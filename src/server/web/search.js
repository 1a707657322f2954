// The search view: a query goes to POST /search (and, side by side, to the compare model too);
// each answer becomes a grid of images with their scores, best first as the server ranked them.

import { api, loadImage } from './client.js';
import { attempt, server } from './ui.js';

const $ = (id) => document.getElementById(id);

/** A hit's caption: its metadata's caption/text/filename, else its id. */
export function captionOf(hit) {
  const md = hit.metadata || {};
  for (const key of ['caption', 'text', 'title', 'filename']) if (typeof md[key] === 'string' && md[key]) return md[key];
  return hit.id;
}

function resultCard(hit, rank) {
  const li = document.createElement('li');
  li.className = 'card';
  li.dataset.id = hit.id;
  li.dataset.score = String(hit.score);
  const fig = document.createElement('figure');
  const img = document.createElement('img');
  img.alt = captionOf(hit);
  img.loading = 'lazy';
  img.decoding = 'async';
  loadImage(img, hit.imageUrl || `/images/${encodeURIComponent(hit.id)}`);
  const cap = document.createElement('figcaption');
  const title = document.createElement('span');
  title.className = 'caption';
  title.textContent = captionOf(hit);
  const score = document.createElement('span');
  score.className = 'score';
  score.textContent = `#${rank} · ${hit.score.toFixed(3)}`;
  score.title = 'cosine similarity';
  cap.append(title, score);
  fig.append(img, cap);
  li.append(fig);
  return li;
}

function column(answer, heading) {
  const col = document.createElement('section');
  col.className = 'result-column';
  col.dataset.model = answer.model;
  const h = document.createElement('h3');
  h.textContent = heading;
  const meta = document.createElement('p');
  meta.className = 'hint';
  meta.textContent = `${answer.modelId || ''} · ${answer.results.length} results · ${Number(answer.tookMs).toFixed(1)} ms`;
  col.append(h, meta);
  if (answer.results.length === 0) {
    const p = document.createElement('p');
    p.textContent = 'No images in the index yet: add some below.';
    col.append(p);
    return col;
  }
  const list = document.createElement('ol');
  list.className = 'grid';
  list.setAttribute('aria-label', `${heading} results`);
  answer.results.forEach((hit, i) => list.append(resultCard(hit, i + 1)));
  col.append(list);
  return col;
}

let controller = null;

async function runSearch() {
  const query = $('query').value.trim();
  if (!query) return;
  const k = Math.min(100, Math.max(1, Number($('k').value) || 10));
  const sideBySide = $('compare-toggle').checked && !!server.info?.compare;
  controller?.abort();
  controller = new AbortController();
  const { signal } = controller;
  $('search-status').textContent = 'Searching…';
  const results = $('results');
  try {
    const calls = [api('/search', { json: { query, k, model: 'primary' }, signal })];
    if (sideBySide) calls.push(api('/search', { json: { query, k, model: 'compare' }, signal }));
    const answers = await Promise.all(calls);
    results.replaceChildren();
    results.classList.toggle('side-by-side', sideBySide);
    if (sideBySide) {
      // Before (the compare model, usually the pretrained one) on the left, after (fine-tuned) on the right.
      results.append(column(answers[1], 'Compare model (before)'), column(answers[0], 'Primary model (after)'));
    } else {
      results.append(column(answers[0], 'Results'));
    }
    $('search-status').textContent = `Results for “${query}”.`;
  } catch (err) {
    $('search-status').textContent = '';
    throw err;
  }
}

export function initSearch() {
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt(runSearch);
  });
  $('compare-toggle').addEventListener('change', () => {
    if ($('query').value.trim()) attempt(runSearch);
  });
}
