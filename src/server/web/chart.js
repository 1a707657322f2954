// A small SVG line chart: axes with "nice" ticks, one polyline per series, a legend. Drawn in a
// fixed viewBox and scaled by CSS, so it fits any width without a resize handler.

const SVG = 'http://www.w3.org/2000/svg';
const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777'];

function el(name, attrs = {}, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
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
 * @param {{title: string, xLabel?: string, series: {name: string, points: [number, number][]}[],
 *          width?: number, height?: number, integerX?: boolean}} spec
 * @returns {SVGSVGElement}
 */
export function lineChart(spec) {
  const W = spec.width || 640;
  const m = { top: 28, right: 16, bottom: 44, left: 56 };
  // Legend: as many columns as the longest name allows (about 7 units per character at 12 px).
  const longest = Math.max(...spec.series.map((s) => s.name.length), 1);
  const cols = Math.max(1, Math.min(spec.series.length, Math.floor((W - m.left) / (longest * 7 + 32))));
  const colW = (W - m.left) / cols;
  const legendRows = Math.ceil(spec.series.length / cols);
  m.bottom += legendRows * 18;
  const H = (spec.height || 280) + legendRows * 18;
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': spec.title });
  svg.append(el('title', {}, spec.title));
  svg.append(el('text', { x: m.left, y: 18, class: 'chart-title' }, spec.title));

  const finite = spec.series.flatMap((s) => s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)));
  if (finite.length === 0) {
    svg.append(el('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty' }, 'no values yet'));
    return svg;
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

  const axes = el('g', { class: 'chart-axes' });
  for (const t of yTicks) {
    const y = sy(t).toFixed(1);
    axes.append(el('line', { x1: m.left, x2: m.left + pw, y1: y, y2: y, class: 'chart-grid' }));
    axes.append(el('text', { x: m.left - 6, y, 'text-anchor': 'end', 'dominant-baseline': 'middle' }, fmt(t)));
  }
  for (const t of xTicks) {
    const x = sx(t).toFixed(1);
    axes.append(el('line', { x1: x, x2: x, y1: m.top + ph, y2: m.top + ph + 4, class: 'chart-tick' }));
    axes.append(el('text', { x, y: m.top + ph + 16, 'text-anchor': 'middle' }, fmt(t)));
  }
  axes.append(el('line', { x1: m.left, x2: m.left, y1: m.top, y2: m.top + ph, class: 'chart-axis' }));
  axes.append(el('line', { x1: m.left, x2: m.left + pw, y1: m.top + ph, y2: m.top + ph, class: 'chart-axis' }));
  if (spec.xLabel) axes.append(el('text', { x: m.left + pw / 2, y: m.top + ph + 32, 'text-anchor': 'middle', class: 'chart-label' }, spec.xLabel));
  svg.append(axes);

  const legend = el('g', { class: 'chart-legend' });
  spec.series.forEach((s, i) => {
    const colour = COLOURS[i % COLOURS.length];
    // Points with a missing value (NaN) are left out; the line joins its neighbours.
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).sort((a, b) => a[0] - b[0]);
    const series = el('g', { class: 'chart-series', 'data-series': s.name });
    series.append(el('polyline', { points: pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' '), fill: 'none', stroke: colour, 'stroke-width': 2 }));
    for (const [x, y] of pts) {
      const dot = el('circle', { cx: sx(x).toFixed(1), cy: sy(y).toFixed(1), r: 3, fill: colour });
      dot.append(el('title', {}, `${s.name}, epoch ${fmt(x)}: ${fmt(y)}`));
      series.append(dot);
    }
    svg.append(series);
    const lx = m.left + (i % cols) * colW;
    const ly = H - legendRows * 18 + Math.floor(i / cols) * 18 + 4;
    legend.append(el('rect', { x: lx, y: ly - 8, width: 12, height: 4, fill: colour }));
    legend.append(el('text', { x: lx + 16, y: ly - 6, 'dominant-baseline': 'middle' }, s.name));
  });
  svg.append(legend);
  return svg;
}
