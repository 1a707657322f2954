// Charts for files read without a browser (the base model's card): drawn by the one line-chart
// renderer, src/server/web/chart.js — the web page's own module, plain JavaScript that runs in the
// browser and in Node alike — as standalone SVG. It is loaded from the package's src/ (shipped), as
// the server's static files are, whether clipfit runs from src/ or dist/.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { WEB_ROOT } from '../../server/static.js';

export interface LineChartSpec {
  title: string;
  xLabel?: string;
  yLabel?: string;
  series: { name: string; points: [number, number][] }[];
  width?: number;
  height?: number;
  integerX?: boolean;
  /** A dot (with a tooltip) on every point; default true. */
  dots?: boolean;
}

interface ChartModule {
  lineChartSvg(spec: LineChartSpec, opts?: { standalone?: boolean }): string;
}

/** The chart as an SVG file's text. */
export async function svgLineChart(spec: LineChartSpec): Promise<string> {
  const mod = (await import(pathToFileURL(path.join(WEB_ROOT, 'chart.js')).href)) as ChartModule;
  return mod.lineChartSvg(spec, { standalone: true });
}
