// Text → image retrieval on a built emoji dataset: the query texts of one query set against the
// images of one held-out set, where a query's relevant images are those of its item(s).
//
// Single-item query sets (en, de, fr, …): query label = item key, index label = item key, so one
// evaluateRetrieval call scores them (docarray's metrics plus R@1/5/10). Tag queries have several
// relevant items; evaluateRetrieval knows one label per row, so each tag query is scored on its own
// with binary labels (index row relevant ↔ 1) and the metrics are averaged over queries.
// Queries none of whose items has an image in the index are dropped (counted in `dropped`).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Document, DocumentArray, LABEL_TAG, pairImage, pairText } from '../../../data/document.js';
import { loadJsonl } from '../../../data/jsonl.js';
import { ConfigError, DataError } from '../../../errors.js';
import { evaluateRetrieval } from '../../../eval/evaluate.js';
import type { Embeddings, EvaluateOptions } from '../../../eval/evaluate.js';
import { readJson } from './packages.js';
import type { EmojiManifest } from './build.js';
import type { TagQuery } from './writers.js';

export type EmojiIndexSet = 'in-domain' | 'shifted';

export interface EmojiEvalSet {
  index: EmojiIndexSet;
  /** 'en', 'tags' or a locale. */
  queries: string;
  /** Text documents; tags.finetuner_label = the item key (or 'tag:<tag>'), tags.relevant = item keys. */
  queryDocs: DocumentArray;
  /** Image documents (uri = absolute path), tags.finetuner_label = the item key, tags.style. */
  indexDocs: DocumentArray;
  /** Per query, the item keys whose images are relevant. */
  relevant: string[][];
  /** Per index row, its item key. */
  indexKeys: string[];
  /** Queries left out because no relevant item has an image in the index. */
  dropped: number;
}

/** Load query set `queries` (default 'en') against the images of eval-`index` in a built dataset. */
export async function loadEmojiEvalSet(out: string, index: EmojiIndexSet = 'in-domain', queries = 'en'): Promise<EmojiEvalSet> {
  if (index !== 'in-domain' && index !== 'shifted') throw new ConfigError('index', `must be 'in-domain' or 'shifted', got ${JSON.stringify(index)}`);
  const manifest = await readJson<EmojiManifest>(path.join(out, 'manifest.json'));
  const qfile = manifest.files?.queries?.[queries];
  if (!qfile) throw new ConfigError('queries', `${path.join(out, 'manifest.json')} lists no query set ${JSON.stringify(queries)}; it has ${Object.keys(manifest.files?.queries ?? {}).join(', ')}`);

  const { docs } = await loadJsonl(path.join(out, `eval-${index}.jsonl`));
  const indexDocs = new DocumentArray(
    docs.map((d) => new Document({ uri: pairImage(d).uri!, modality: 'image', tags: { [LABEL_TAG]: d.tags[LABEL_TAG], style: d.tags['style'] } })),
  );
  const indexKeys = indexDocs.map((d) => String(d.tags[LABEL_TAG]));
  const inIndex = new Set(indexKeys);

  let raw: { text: string; relevant: string[]; label: string }[];
  if (queries === 'tags') {
    const file = path.join(out, qfile);
    const text = await readFile(file, 'utf8');
    raw = text
      .split('\n')
      .filter((l) => l.trim())
      .map((l, i) => {
        const q = JSON.parse(l) as TagQuery;
        if (typeof q.query !== 'string' || !Array.isArray(q.relevant)) throw new DataError(file, i + 1, undefined, 'expected {query, relevant: [keys]}', 'line');
        return { text: q.query, relevant: q.relevant, label: `tag:${q.query}` };
      });
  } else {
    const { docs: qdocs } = await loadJsonl(path.join(out, qfile));
    raw = qdocs.map((d) => ({ text: pairText(d), relevant: [String(d.tags[LABEL_TAG])], label: String(d.tags[LABEL_TAG]) }));
  }
  const kept = raw.map((q) => ({ ...q, relevant: q.relevant.filter((k) => inIndex.has(k)) })).filter((q) => q.relevant.length > 0);
  const queryDocs = new DocumentArray(kept.map((q) => new Document({ text: q.text, modality: 'text', tags: { [LABEL_TAG]: q.label, relevant: q.relevant } })));
  return { index, queries, queryDocs, indexDocs, relevant: kept.map((q) => q.relevant), indexKeys, dropped: raw.length - kept.length };
}

/** Retrieval metrics of a set given the query and index embeddings (rows in the set's order). */
export function scoreEmojiEvalSet(
  set: Pick<EmojiEvalSet, 'relevant' | 'indexKeys'>,
  queryEmbeddings: Embeddings,
  indexEmbeddings: Embeddings,
  opts: Pick<EvaluateOptions, 'limit' | 'k' | 'distance' | 'prefix'> = {},
): Record<string, number> {
  const nq = set.relevant.length;
  if (set.relevant.every((r) => r.length === 1)) {
    return evaluateRetrieval({ ...opts, queryEmbeddings, indexEmbeddings, queryLabels: set.relevant.map((r) => r[0]!), indexLabels: set.indexKeys });
  }
  const q = rowsOf(queryEmbeddings, nq);
  const sums: Record<string, number> = {};
  set.relevant.forEach((rel, i) => {
    const relSet = new Set(rel);
    const m = evaluateRetrieval({ ...opts, queryEmbeddings: [q[i]!], queryLabels: [1], indexEmbeddings, indexLabels: set.indexKeys.map((k) => (relSet.has(k) ? 1 : 0)) });
    for (const [k, v] of Object.entries(m)) sums[k] = (sums[k] ?? 0) + v;
  });
  for (const k of Object.keys(sums)) sums[k]! /= nq;
  return sums;
}

function rowsOf(e: Embeddings, n: number): ArrayLike<number>[] {
  if (!(e instanceof Float32Array)) return [...e];
  const dim = e.length / n;
  return Array.from({ length: n }, (_, i) => e.subarray(i * dim, (i + 1) * dim));
}
