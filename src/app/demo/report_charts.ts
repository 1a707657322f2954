// The demo page's charts as data: each is a spec for lineChart() of src/server/web/chart.js, computed
// here (typed, at write time) and embedded in the page as JSON; the page's script only draws them.
// A chart without any finite point is left out rather than drawn empty.

import type { DemoReport } from './report_types.js';
import { metricLabel, stripDirection } from '../../eval/metric_names.js';
import { querySets } from './report_table.js';

export interface ChartSpec {
  /** Id of the page's container element. */
  id: string;
  /** What a point's x is, for the dots' tooltips (lineChart says "epoch"). */
  xName: string;
  spec: { title: string; xLabel: string; series: { name: string; points: [number, number][] }[]; integerX?: boolean; width?: number; height?: number };
}

/** In-domain curves worth a line, in this order, when the history has them. */
const CURVE_METRICS = ['recall_at_1', 'recall_at_5', 'recall_at_10', 'hit_at_k', 'ndcg_at_k', 'reciprocal_rank'];
/** At most this many dots per step-loss line: longer runs are averaged in equal buckets of steps. */
const MAX_STEP_POINTS = 400;

const finitePoints = (pts: [number, number][]): [number, number][] => pts.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));

/** Drawn narrower than chart.js's default 640 so that its 12 px text stays legible when a phone scales it down. */
const WIDTH = 480;
const HEIGHT = 250;

function withPoints(c: ChartSpec): ChartSpec | null {
  c.spec.width = WIDTH;
  c.spec.height = HEIGHT;
  c.spec.series = c.spec.series.map((s) => ({ ...s, points: finitePoints(s.points) })).filter((s) => s.points.length > 0);
  return c.spec.series.length ? c : null;
}

/** The α of a variant: zero-shot is 0, fine-tuned is 1, 'WiSE-FT α=0.25' (or alpha=0.25) is 0.25. */
export function variantAlpha(variant: string): number | null {
  const v = variant.trim().toLowerCase();
  if (v === 'zero-shot') return 0;
  if (v === 'fine-tuned') return 1;
  const m = /(?:α|alpha)\s*=\s*([0-9]*\.?[0-9]+)/i.exec(variant);
  return m ? Number(m[1]) : null;
}

/** Per-step loss, bucket-averaged down to MAX_STEP_POINTS points (x = mean step of the bucket). */
function stepPoints(steps: { step: number; loss: number }[]): [number, number][] {
  const pts = finitePoints(steps.map((s) => [s.step, s.loss]));
  if (pts.length <= MAX_STEP_POINTS) return pts;
  const out: [number, number][] = [];
  const size = pts.length / MAX_STEP_POINTS;
  for (let b = 0; b < MAX_STEP_POINTS; b++) {
    const chunk = pts.slice(Math.floor(b * size), Math.floor((b + 1) * size));
    if (chunk.length) out.push([chunk.reduce((s, p) => s + p[0], 0) / chunk.length, chunk.reduce((s, p) => s + p[1], 0) / chunk.length]);
  }
  return out;
}

/** History metrics grouped by their unprefixed name; a name seen under two prefixes keeps its full keys apart. */
function historySeries(history: DemoReport['history']): Map<string, [number, number][]> {
  const keys = [...new Set(history.flatMap((h) => Object.keys(h.metrics)))];
  const stripped = new Map<string, string[]>();
  for (const k of keys) stripped.set(stripDirection(k), [...(stripped.get(stripDirection(k)) ?? []), k]);
  const out = new Map<string, [number, number][]>();
  for (const [name, full] of stripped) {
    for (const k of full) {
      const label = full.length > 1 ? k : name;
      out.set(label, history.filter((h) => h.metrics[k] !== undefined).map((h) => [h.epoch, h.metrics[k]!]));
    }
  }
  return out;
}

export function buildCharts(data: DemoReport): ChartSpec[] {
  const charts: (ChartSpec | null)[] = [];
  const hist = historySeries(data.history);
  const lossNames = [...hist.keys()].filter((k) => /loss/i.test(k));
  charts.push(
    withPoints({
      id: 'chart-loss-epoch',
      xName: 'epoch',
      spec: { title: 'Training loss per epoch', xLabel: 'epoch', integerX: true, series: lossNames.map((n) => ({ name: n, points: hist.get(n)! })) },
    }),
  );
  if (data.stepLoss?.length) {
    charts.push(withPoints({ id: 'chart-loss-step', xName: 'step', spec: { title: 'Training loss per step', xLabel: 'step', series: [{ name: 'train loss', points: stepPoints(data.stepLoss) }] } }));
  }
  const metricNames = [...hist.keys()].filter((k) => !/loss/i.test(k));
  const chosen = CURVE_METRICS.filter((m) => hist.has(m));
  charts.push(
    withPoints({
      id: 'chart-metrics-epoch',
      xName: 'epoch',
      spec: {
        title: 'In-domain retrieval per epoch',
        xLabel: 'epoch (0 = zero-shot)',
        integerX: true,
        series: (chosen.length ? chosen : metricNames).map((n) => ({ name: metricLabel(n), points: hist.get(n)! })),
      },
    }),
  );
  // WiSE-FT: the weights θ(α) = (1 − α)·θ_zero-shot + α·θ_fine-tuned, scored on both eval sets.
  const main = querySets(data)[0];
  const rows = data.results.filter((r) => r.querySet === main && variantAlpha(r.variant) !== null);
  const evalSets = [...new Set(rows.map((r) => r.evalSet))];
  const series = ['recall_at_1', 'hit_at_k'].flatMap((m) =>
    evalSets.map((e) => ({
      name: `${metricLabel(m)} ${e}`,
      points: rows.filter((r) => r.evalSet === e && r.metrics[m] !== undefined).map((r): [number, number] => [variantAlpha(r.variant)!, r.metrics[m]!]),
    })),
  );
  if (new Set(rows.map((r) => variantAlpha(r.variant))).size >= 2) {
    charts.push(
      withPoints({
        id: 'chart-wise',
        xName: 'α',
        spec: { title: `WiSE-FT weight mix${main ? `, ${main} queries` : ''}`, xLabel: 'α  (0 = zero-shot, 1 = fine-tuned)', series },
      }),
    );
  }
  return charts.filter((c): c is ChartSpec => c !== null);
}
