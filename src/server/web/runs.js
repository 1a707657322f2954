// The runs pages: #/runs lists the run store's runs; #/runs/<name> draws the run's per-epoch loss
// curves and its evaluation metrics as two line charts, with the numbers in a table below.

import { api } from './client.js';
import { lineChart } from './chart.js';

function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');

export async function showRuns(root) {
  root.replaceChildren(h('p', { class: 'status' }, 'Loading runs…'));
  const { runs } = await api('/api/runs');
  if (runs.length === 0) {
    root.replaceChildren(h('p', {}, 'No runs in this run store yet (clipfit fit … records one).'));
    return;
  }
  const rows = [...runs].reverse().map((r) => {
    const p = r.progress;
    const progress = p ? `epoch ${p.epoch}/${p.epochs}, loss ${Number(p.loss).toFixed(4)}` : '—';
    return h(
      'tr',
      {},
      h('th', { scope: 'row' }, h('a', { href: `#/runs/${encodeURIComponent(r.name)}` }, r.name)),
      h('td', {}, r.experiment),
      h('td', { class: `run-status status-${String(r.status).toLowerCase()}` }, r.status),
      h('td', {}, when(r.createdAt)),
      h('td', {}, progress),
    );
  });
  const table = h(
    'table',
    { class: 'runs' },
    h('caption', {}, `${runs.length} run${runs.length > 1 ? 's' : ''}, newest first`),
    h('thead', {}, h('tr', {}, ...['Run', 'Experiment', 'Status', 'Created', 'Progress'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, ...rows),
  );
  root.replaceChildren(h('div', { class: 'table-wrap' }, table));
}

/** Series {name, points: [epoch, value][]} for every metric name that passes `keep`. */
function seriesOf(epochs, keep) {
  const names = [...new Set(epochs.flatMap((e) => Object.keys(e.values)))].filter(keep).sort();
  return names.map((name) => ({
    name,
    points: epochs.map((e) => [e.epoch, e.values[name] === null || e.values[name] === undefined ? NaN : Number(e.values[name])]),
  }));
}

const isLoss = (name) => /loss/i.test(name);

export async function showRun(root, name) {
  root.replaceChildren(h('p', { class: 'status' }, `Loading ${name}…`));
  const run = await api(`/api/runs/${encodeURIComponent(name)}/metrics`);
  const back = h('p', {}, h('a', { href: '#/runs' }, '← all runs'));
  const title = h('h3', {}, `${run.name} `, h('span', { class: `run-status status-${String(run.status).toLowerCase()}` }, run.status));
  const parts = [back, title];
  if (run.epochs.length === 0) {
    parts.push(h('p', {}, 'No per-epoch metrics recorded for this run yet.'));
    root.replaceChildren(...parts);
    return;
  }
  const loss = seriesOf(run.epochs, isLoss);
  const metrics = seriesOf(run.epochs, (n) => !isLoss(n));
  if (loss.length) parts.push(h('figure', { class: 'chart-box' }, lineChart({ title: 'Loss per epoch', xLabel: 'epoch', series: loss, integerX: true })));
  if (metrics.length) parts.push(h('figure', { class: 'chart-box' }, lineChart({ title: 'Metrics per epoch', xLabel: 'epoch', series: metrics, integerX: true })));

  const names = [...loss, ...metrics].map((s) => s.name);
  const fmt = (v) => (v === null || v === undefined || Number.isNaN(v) ? '—' : Number(v).toPrecision(4));
  const table = h(
    'table',
    { class: 'metrics' },
    h('caption', {}, 'Values per epoch'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'epoch'), ...names.map((n) => h('th', { scope: 'col' }, n)))),
    h('tbody', {}, ...run.epochs.map((e) => h('tr', {}, h('th', { scope: 'row' }, String(e.epoch)), ...names.map((n) => h('td', {}, fmt(e.values[n])))))),
  );
  parts.push(h('div', { class: 'table-wrap' }, table));
  root.replaceChildren(...parts);
}
