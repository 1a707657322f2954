// The demo's metric table, one per query set: rows are model variant × eval set, columns the
// retrieval metrics. The same rows feed the terminal table (fixed width, best marked with '*') and
// the page's HTML table (best in bold). "Best" is the maximum of a column within one eval set:
// every metric here is higher-is-better, and in-domain and shifted numbers are not comparable.

import { DemoReportError } from '../../errors.js';
import type { DemoReport } from './report_types.js';
import { metricLabel } from '../../eval/metric_names.js';

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A metric value as the tables show it: three decimals, '-' where missing or not finite. */
export const formatMetric = (v: number | undefined): string => (v !== undefined && Number.isFinite(v) ? v.toFixed(3) : '-');

export interface TableRow {
  variant: string;
  evalSet: string;
  metrics: Record<string, number>;
  /** Metric names in which this row is the best (ties included) of its eval set. */
  best: Set<string>;
}

/** Query sets in display order: 'en' (the main table) first, then the others as they first appear. */
export function querySets(data: DemoReport): string[] {
  const seen = [...new Set(data.results.map((r) => r.querySet))];
  return seen.includes('en') ? ['en', ...seen.filter((q) => q !== 'en')] : seen;
}

/** The rows of one query set, variant-major in order of first appearance, with the best cells marked. */
export function tableRows(data: DemoReport, querySet: string): TableRow[] {
  const variants = [...new Set(data.results.map((r) => r.variant))];
  const evalSets = [...new Set(data.results.map((r) => r.evalSet))];
  const byKey = new Map<string, TableRow>();
  data.results.forEach((r, i) => {
    if (r.querySet !== querySet) return;
    const key = `${r.variant}\u0000${r.evalSet}`;
    if (byKey.has(key)) throw new DemoReportError(`results[${i}]`, `a second row for variant '${r.variant}', eval set '${r.evalSet}', query set '${querySet}'`);
    byKey.set(key, { variant: r.variant, evalSet: r.evalSet, metrics: r.metrics, best: new Set() });
  });
  const rows: TableRow[] = [];
  for (const v of variants) for (const e of evalSets) {
    const row = byKey.get(`${v}\u0000${e}`);
    if (row) rows.push(row);
  }
  for (const e of evalSets) {
    const group = rows.filter((r) => r.evalSet === e);
    if (group.length < 2) continue;
    for (const name of data.metricNames) {
      const vals = group.map((r) => r.metrics[name]).filter((v): v is number => v !== undefined && Number.isFinite(v));
      if (!vals.length) continue;
      const max = Math.max(...vals);
      for (const r of group) if (r.metrics[name] === max) r.best.add(name);
    }
  }
  return rows;
}

/** Wraps "a = b" entries into lines of at most `width` characters. */
function wrapKey(entries: string[], width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const e of entries) {
    const next = line ? `${line}, ${e}` : e;
    if (line && next.length > width) {
      lines.push(`${line},`);
      line = e;
    } else line = next;
  }
  if (line) lines.push(line);
  return lines;
}

/**
 * The metric tables for the terminal: one block per query set ('en' first), fixed-width columns,
 * '*' after the best value of a column within an eval set, and a key of the short headers.
 */
export function formatMetricTable(data: DemoReport): string {
  const names = data.metricNames;
  const heads = names.map(metricLabel);
  const out: string[] = [];
  for (const q of querySets(data)) {
    const rows = tableRows(data, q);
    const vw = Math.max('variant'.length, ...rows.map((r) => r.variant.length));
    const ew = Math.max('eval set'.length, ...rows.map((r) => r.evalSet.length));
    // Each metric column: wide enough for its header and '0.000*' (or a larger value such as DCG).
    const widths = names.map((n, j) => Math.max(heads[j]!.length, ...rows.map((r) => formatMetric(r.metrics[n]).length + 1)));
    const line = (cells: string[]): string =>
      cells.map((c, j) => (j < 2 ? c.padEnd(j === 0 ? vw : ew) : c.padStart(widths[j - 2]!))).join('  ').trimEnd();
    out.push(`queries: ${q}`);
    const header = line(['variant', 'eval set', ...heads]);
    out.push(header, '-'.repeat(header.length));
    let lastVariant = '';
    for (const r of rows) {
      const cells = names.map((n) => `${formatMetric(r.metrics[n])}${r.best.has(n) ? '*' : ' '}`);
      // Right-aligned with the marker column: pad the values so the digits line up under the header.
      out.push(line([r.variant === lastVariant ? '' : r.variant, r.evalSet, ...cells]));
      lastVariant = r.variant;
    }
    out.push('');
  }
  out.push('* best of the column within an eval set');
  const key = names.map((n, j) => `${heads[j]} = ${n}`).filter((_, j) => heads[j] !== names[j]);
  out.push(...wrapKey(key, 100));
  return out.join('\n');
}

/** One metric table as HTML (inside a horizontally scrolling wrapper); best cells in <strong>. */
export function metricTableHtml(data: DemoReport, querySet: string): string {
  const rows = tableRows(data, querySet);
  const head = data.metricNames.map((n) => `<th scope="col" title="${escapeHtml(n)}"><abbr title="${escapeHtml(n)}">${escapeHtml(metricLabel(n))}</abbr></th>`).join('');
  const body = rows
    .map((r, i) => {
      const first = i === 0 || rows[i - 1]!.variant !== r.variant;
      const cells = data.metricNames
        .map((n) => {
          const v = escapeHtml(formatMetric(r.metrics[n]));
          return r.best.has(n) ? `<td class="num best"><strong>${v}</strong></td>` : `<td class="num">${v}</td>`;
        })
        .join('');
      return `<tr class="${first ? 'variant-start' : ''}"><th scope="row">${first ? escapeHtml(r.variant) : ''}</th><td>${escapeHtml(r.evalSet)}</td>${cells}</tr>`;
    })
    .join('\n');
  return [
    `<div class="table-wrap"><table class="metrics" data-query-set="${escapeHtml(querySet)}">`,
    `<caption>queries: ${escapeHtml(querySet)} — bold: best of the column within an eval set</caption>`,
    `<thead><tr><th scope="col">variant</th><th scope="col">eval set</th>${head}</tr></thead>`,
    `<tbody>\n${body}\n</tbody></table></div>`,
  ].join('\n');
}
