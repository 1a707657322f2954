// The data of the demo's report: what run_demo measures and report.ts writes as metrics.json and the page.

export interface Hit {
  key: string;
  label: string;
  /** Absolute path of a PNG. */
  image: string;
  score: number;
  relevant: boolean;
}

export interface DemoReport {
  title: string;
  /** ISO time. */
  createdAt: string;
  /** Base model, train pairs, epochs, batch, lr, wall time s, dataset sizes, … */
  setup: Record<string, string | number>;
  /** Metric names in display order, unprefixed: the nine docarray metrics, then recall_at_1/5/10. */
  metricNames: string[];
  /** One row per (variant, eval set, query set); variant 'zero-shot' | 'fine-tuned' | 'WiSE-FT α=0.25' | …,
   * evalSet 'in-domain' | 'shifted', querySet 'en' | 'de' | 'tags' | …; metrics keyed by the unprefixed names. */
  results: { variant: string; evalSet: string; querySet: string; metrics: Record<string, number> }[];
  /** Per epoch (0 = zero-shot, before training): train loss (absent at 0) and the in-domain metrics
   * as EvaluationCallback records them (keys may carry an '<a>-to-<b>_' prefix). */
  history: { epoch: number; metrics: Record<string, number> }[];
  /** Per-step training loss, for a finer loss chart. */
  stepLoss?: { step: number; loss: number }[];
  /** Before and after: for about a dozen queries, the top results of zero-shot and fine-tuned. */
  examples: { query: string; relevantKey: string; zeroShot: Hit[]; fineTuned: Hit[] }[];
  notes?: string[];
}
