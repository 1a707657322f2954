// clipfit's one line-chart renderer: axes with "nice" ticks, one polyline per series, a legend. It
// writes SVG markup, so the same code draws the web page's charts (lineChart, in the browser), the
// demo report's (this file is inlined there) and files read without a browser (lineChartSvg with
// `standalone`, from Node: the base model's loss.svg). Drawn in a fixed viewBox and scaled by CSS,
// so it fits any width without a resize handler. Stands alone: no imports.

const SVG = 'http://www.w3.org/2000/svg';
const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];
/** The page's chart rules (style.css), carried inside a standalone SVG that has no stylesheet. */
const STANDALONE_CSS =
  'text{font-family:system-ui,sans-serif}.chart-title{font-weight:600;font-size:14px;fill:#1f2937}' +
  '.chart-axes text,.chart-legend text{fill:#6b7280}.chart-grid{stroke:#e5e7eb}.chart-axis,.chart-tick{stroke:#6b7280}.chart-empty{fill:#6b7280}';

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);

/** An element as markup; `inner` is markup already (escape text with esc). */
function el(name, attrs = {}, inner = '') {
  const a = Object.entries(attrs).map(([k, v]) => ` ${k}="${esc(v)}"`).join('');
  return `<${name}${a}>${inner}</${name}>`;
}

/**
 * Ticks covering [lo, hi] at a step of 1, 2 or 5 × 10^k, about `count` of them (Heckbert's
 * "nice numbers"): step = nice(range / count), ticks at every multiple of step inside the range.
 */
export function niceTicks(lo, hi, count = 5) {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [];
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const raw = (hi - lo) / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  const step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
  const first = Math.floor(lo / step) * step;
  const last = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let v = first; v <= last + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function fmt(v) {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/**
 * The chart as SVG markup.
 * @param {{title: string, xLabel?: string, yLabel?: string, series: {name: string, points: [number, number][]}[],
 *          width?: number, height?: number, integerX?: boolean, dots?: boolean}} spec
 *   dots (default true): a dot with a tooltip on every point.
 * @param {{standalone?: boolean}} [opts] standalone: a file of its own (xmlns, pixel size, the page's
 *   chart styles inside, a white background).
 * @returns {string}
 */
export function lineChartSvg(spec, opts = {}) {
  const W = spec.width || 640;
  const m = { top: 28, right: 16, bottom: 44, left: spec.yLabel ? 72 : 56 };
  // Legend: as many columns as the longest name allows (about 7 units per character at 12 px).
  const longest = Math.max(...spec.series.map((s) => s.name.length), 1);
  const cols = Math.max(1, Math.min(spec.series.length, Math.floor((W - m.left) / (longest * 7 + 32))));
  const colW = (W - m.left) / cols;
  const legendRows = Math.ceil(spec.series.length / cols);
  m.bottom += legendRows * 18;
  const H = (spec.height || 280) + legendRows * 18;
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const rootAttrs = opts.standalone
    ? { xmlns: SVG, viewBox: `0 0 ${W} ${H}`, width: W, height: H, 'font-size': 12, class: 'chart', role: 'img', 'aria-label': spec.title }
    : { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': spec.title };
  const parts = [];
  if (opts.standalone) parts.push(el('style', {}, STANDALONE_CSS), el('rect', { width: W, height: H, fill: '#fff' }));
  parts.push(el('title', {}, esc(spec.title)));
  parts.push(el('text', { x: m.left, y: 18, class: 'chart-title' }, esc(spec.title)));

  const finite = spec.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  if (finite.length === 0) {
    parts.push(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'no values yet'));
    return el('svg', rootAttrs, parts.join(''));
  }
  const xs = finite.map((p) => p[0]);
  const ys = finite.map((p) => p[1]);
  let xTicks = niceTicks(Math.min(...xs), Math.max(...xs), Math.min(6, Math.max(1, new Set(xs).size - 1)));
  if (spec.integerX) xTicks = xTicks.filter((t) => Number.isInteger(t));
  if (xTicks.length < 2) xTicks = [Math.min(...xs) - 1, Math.max(...xs) + 1];
  const yTicks = niceTicks(Math.min(...ys), Math.max(...ys), 5);
  const [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  const [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const sx = (x) => m.left + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y) => m.top + ph - ((y - y0) / (y1 - y0)) * ph;

  const axes = [];
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    axes.push(el('line', { x1: m.left, x2: m.left + pw, y1: y, y2: y, class: 'chart-grid' }));
    axes.push(el('text', { x: m.left - 6, y, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, fmt(t)));
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    axes.push(el('line', { x1: x, x2: x, y1: m.top + ph, y2: m.top + ph + 4, class: 'chart-tick' }));
    axes.push(el('text', { x, y: m.top + ph + 16, 'text-anchor': 'middle' }, fmt(t)));
  }
  axes.push(el('line', { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ph, class: 'chart-axis' }));
  axes.push(el('line', { x1: m.left, x2: m.left + pw, y1: m.top + ph, y2: m.top + ph, class: 'chart-axis' }));
  if (spec.xLabel) axes.push(el('text', { x: m.left + pw / 2, y: m.top + ph + 32, 'text-anchor': 'middle', class: 'chart-label' }, esc(spec.xLabel)));
  if (spec.yLabel) axes.push(el('text', { transform: `translate(14 ${m.top + ph / 2}) rotate(-90)`, 'text-anchor': 'middle', class: 'chart-label' }, esc(spec.yLabel)));
  parts.push(el('g', { class: 'chart-axes' }, axes.join('')));

  const legend = [];
  spec.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    // Points with a missing value (NaN) are left out; the line joins its neighbours.
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    const inner = [el('polyline', { points: pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' '), fill: 'none', stroke: colour, 'stroke-width': 2 })];
    if (spec.dots !== false) {
      for (const [x, y] of pts) inner.push(el('circle', { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 3, fill: colour }, el('title', {}, esc(`${s.name}, epoch ${fmt(x)}: ${fmt(y)}`))));
    }
    parts.push(el('g', { class: 'chart-series', 'data-series': s.name }, inner.join('')));
    const lx = m.left + (i % cols) * colW;
    const ly = H - legendRows * 18 + Math.floor(i / cols) * 18 + 4;
    legend.push(el('rect', { x: lx, y: ly - 8, width: 12, height: 4, fill: colour }));
    legend.push(el('text', { x: lx + 16, y: ly - 6, 'dominant-baseline': 'middle' }, esc(s.name)));
  });
  parts.push(el('g', { class: 'chart-legend' }, legend.join('')));
  return el('svg', rootAttrs, parts.join(''));
}

/**
 * The chart as an SVG element of the page (browser only): lineChartSvg parsed by the HTML parser,
 * which gives <svg> and everything in it the SVG namespace.
 * @returns {SVGSVGElement}
 */
export function lineChart(spec) {
  const t = document.createElement('template');
  t.innerHTML = lineChartSvg(spec);
  return t.content.firstElementChild;
}
