// A line chart as a standalone SVG string, for files read without a browser script (the base
// model's card). Ticks at 1, 2 or 5 × 10^k (Heckbert's nice numbers).

export interface Series {
  name: string;
  points: [number, number][];
}

const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

export function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const f = raw / mag;
  return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * mag;
}

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const fmt = (v: number) => String(+v.toPrecision(4));

export function svgLineChart(series: Series[], o: { title: string; xLabel: string; yLabel: string; width?: number; height?: number }): string {
  const W = o.width ?? 640;
  const H = o.height ?? 320;
  const m = { l: 56, r: 16, t: 32, b: 44 };
  const pts = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (!pts.length) throw new RangeError(`chart '${o.title}' has no finite points`);
  let [x0, x1] = [Math.min(...pts.map((p) => p[0])), Math.max(...pts.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...pts.map((p) => p[1])), Math.max(...pts.map((p) => p[1]))];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const xs = niceStep(x1 - x0, 6);
  const ys = niceStep(y1 - y0, 5);
  [x0, x1] = [Math.floor(x0 / xs) * xs, Math.ceil(x1 / xs) * xs];
  [y0, y1] = [Math.floor(y0 / ys) * ys, Math.ceil(y1 / ys) * ys];
  const X = (x: number) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
  const Y = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">${esc(o.title)}</text>`,
  ];
  for (let v = x0; v <= x1 + xs / 2; v += xs)
    out.push(`<line x1="${X(v)}" x2="${X(v)}" y1="${m.t}" y2="${H - m.b}" stroke="#eee"/><text x="${X(v)}" y="${H - m.b + 14}" text-anchor="middle">${fmt(v)}</text>`);
  for (let v = y0; v <= y1 + ys / 2; v += ys)
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${Y(v)}" y2="${Y(v)}" stroke="#eee"/><text x="${m.l - 6}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  out.push(`<text x="${W / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text transform="translate(14 ${H / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLOURS[i % COLOURS.length]!;
    const p = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).map(([x, y]) => `${X(x).toFixed(1)},${Y(y).toFixed(1)}`);
    out.push(`<polyline fill="none" stroke="${c}" stroke-width="1.5" points="${p.join(' ')}"/>`);
    out.push(`<rect x="${m.l + 8}" y="${m.t + 4 + i * 16}" width="10" height="10" fill="${c}"/><text x="${m.l + 22}" y="${m.t + 13 + i * 16}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}
