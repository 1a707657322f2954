// Top-k through a folder index's HNSW graph. The graph is asked for max(k, ef) candidates (it
// explores that many); a filter drops candidates before the cut, and the request widens ×4 while
// fewer than k are left. An f16 or i8 graph orders candidates by approximate scores: its best
// max(k, rerank) are scored again exactly, q·v against the f32 store, and sorted by that (ties by
// slot), so the top k come out in exact order with exact scores whenever the graph found them.

import type { HnswGraph } from './hnsw_graph.js';
import type { ScoredSlot, VectorStore } from './vector_store.js';

export interface GraphSearch {
  ef: number;
  rerank: number;
  keep?: (slot: number) => boolean;
}

export function searchGraph(graph: HnswGraph, store: VectorStore, q: Float32Array, k: number, o: GraphSearch): ScoredSlot[] {
  const exactScores = graph.params.precision === 'f32' || o.rerank === 0;
  let want = Math.max(k, o.ef);
  for (;;) {
    const r = graph.search(q, want);
    const cands: ScoredSlot[] = [];
    const room = exactScores ? k : Math.max(k, o.rerank);
    for (let i = 0; i < r.keys.length && cands.length < room; i++) if (!o.keep || o.keep(r.keys[i]!)) cands.push({ slot: r.keys[i]!, score: r.scores[i]! });
    if (!exactScores) {
      for (const c of cands) c.score = store.dot(c.slot, q);
      cands.sort((a, b) => b.score - a.score || a.slot - b.slot);
      cands.length = Math.min(cands.length, k);
    }
    if (cands.length === k || r.keys.length < want || want >= store.size) return cands;
    want = Math.min(want * 4, store.size);
  }
}
