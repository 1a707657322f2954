// Names of retrieval metrics as reports carry them: keys are `${query}-to-${index}_${metric}`
// (Finetuner's EvaluationCallback names the two towers), the metric alone is docarray's name
// (metrics.ts), and a table or chart shows a short label ('recall_at_5' → 'R@5').

/** The key prefix of a retrieval from `query`'s tower into `index`'s: 'clip-text-to-clip-vision'. */
export const directionPrefix = (query: string, index: string): string => `${query}-to-${index}`;

/** The prefix of text-to-image retrieval, the default of evaluateRetrieval. */
export const TEXT_TO_IMAGE = directionPrefix('clip-text', 'clip-vision');

/** 'clip-text-to-clip-vision_hit_at_k' → 'hit_at_k': the EvaluationCallback prefix names the towers. */
export const stripDirection = (key: string): string => key.replace(/^[A-Za-z0-9.-]+-to-[A-Za-z0-9.-]+_/, '');

/** A metric map with every key's direction prefix stripped. */
export const stripDirections = (m: Record<string, number>): Record<string, number> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [stripDirection(k), v]));

/** Short column headers; the full names are listed under the terminal table and in the page's tooltips. */
const SHORT: Record<string, string> = {
  precision_at_k: 'P@k',
  recall_at_k: 'R@k',
  f1_score_at_k: 'F1@k',
  hit_at_k: 'Hit@k',
  average_precision: 'AP',
  reciprocal_rank: 'RR',
  r_precision: 'R-prec',
  dcg_at_k: 'DCG@k',
  ndcg_at_k: 'nDCG@k',
};

/** Column header of a metric: 'recall_at_5' → 'R@5', the docarray names as in SHORT, else the name. */
export function metricLabel(name: string): string {
  if (SHORT[name]) return SHORT[name];
  const m = /^(precision|recall|hit|ndcg)_at_(\d+)$/.exec(name);
  if (m) return `${{ precision: 'P', recall: 'R', hit: 'Hit', ndcg: 'nDCG' }[m[1] as 'precision']}@${m[2]}`;
  return name;
}
