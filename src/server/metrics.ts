// Prometheus text exposition (format 0.0.4), hand-written: counters, gauges and histograms with
// labels. A histogram keeps cumulative bucket counts `le` (≤ bound), plus `_sum` and `_count`.

type Labels = Record<string, string>;

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const labelKey = (l: Labels): string =>
  Object.keys(l)
    .sort()
    .map((k) => `${k}="${escapeLabel(l[k]!)}"`)
    .join(',');
const fmt = (v: number): string => (Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v));

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) out.push(`${this.name} 0`);
    for (const [k, v] of this.values) out.push(`${this.name}${k ? `{${k}}` : ''} ${fmt(v)}`);
    return out;
  }
}

export class Gauge implements Metric {
  constructor(readonly name: string, readonly help: string, private readonly read: () => Map<string, number> | number) {}
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    const v = this.read();
    if (typeof v === 'number') out.push(`${this.name} ${fmt(v)}`);
    else for (const [k, x] of v) out.push(`${this.name}${k ? `{${k}}` : ''} ${fmt(x)}`);
    return out;
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { buckets: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {}
  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { buckets: this.bounds.map(() => 0), sum: 0, count: 0 }));
    this.bounds.forEach((b, i) => {
      if (value <= b) s!.buckets[i]!++;
    });
    s.sum += value;
    s.count++;
  }
  count(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.count ?? 0;
  }
  sum(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.sum ?? 0;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const pre = k ? `${k},` : '';
      this.bounds.forEach((b, i) => out.push(`${this.name}_bucket{${pre}le="${fmt(b)}"} ${s.buckets[i]}`));
      out.push(`${this.name}_bucket{${pre}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ''} ${fmt(s.sum)}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return out;
  }
}

export const labelsKey = labelKey;

/** Everything /metrics shows. */
export class ServerMetrics {
  readonly requests = new Counter('clipfit_http_requests_total', 'HTTP requests by route, method and status code.');
  readonly latency = new Histogram('clipfit_http_request_duration_seconds', 'HTTP request latency in seconds, by route.', [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
  ]);
  readonly encoderCalls = new Counter('clipfit_encoder_calls_total', 'Encoder (model) runs, by model and modality; micro-batching makes this smaller than the requests.');
  readonly encodeItems = new Counter('clipfit_encoder_items_total', 'Items encoded, by model and modality.');
  readonly batchSize = new Histogram('clipfit_encoder_batch_size', 'Items per encoder run, by modality.', [1, 2, 4, 8, 16, 32, 64, 128]);
  private readonly extra: Metric[] = [];

  /** Add a gauge read at scrape time (index sizes). */
  gauge(name: string, help: string, read: () => Map<string, number> | number): void {
    this.extra.push(new Gauge(name, help, read));
  }

  render(): string {
    const all: Metric[] = [this.requests, this.latency, this.encoderCalls, this.encodeItems, this.batchSize, ...this.extra];
    return all.flatMap((m) => m.render()).join('\n') + '\n';
  }
}
