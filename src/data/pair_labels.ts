// Labels for text-image pairs without explicit ones: the connected components of the graph whose
// nodes are the distinct captions and images and whose edges are the pairs. Pairs that share a
// caption or an image (directly or through other pairs) get one label, so CLIP's contrastive loss
// does not push them apart as negatives. Labels are 0, 1, 2, … in order of each component's first pair.

import { Document, LABEL_TAG } from './document.js';

export interface PairKey {
  text: string;
  /** The image's identity (its resolved uri, or a digest of its bytes). */
  image: string;
}

export function componentLabels(pairs: readonly PairKey[]): { labels: number[]; count: number } {
  const id = new Map<string, number>();
  const parent: number[] = [];
  const node = (key: string): number => {
    let n = id.get(key);
    if (n === undefined) {
      n = parent.length;
      id.set(key, n);
      parent.push(n);
    }
    return n;
  };
  const find = (n: number): number => {
    while (parent[n] !== n) n = parent[n] = parent[parent[n]!]!;
    return n;
  };
  const textNodes = pairs.map((p) => {
    const t = node('t' + p.text);
    const i = node('i' + p.image);
    const rt = find(t);
    const ri = find(i);
    if (rt !== ri) parent[Math.max(rt, ri)] = Math.min(rt, ri);
    return t;
  });
  const labelOf = new Map<number, number>();
  const labels = textNodes.map((t) => {
    const root = find(t);
    let label = labelOf.get(root);
    if (label === undefined) labelOf.set(root, (label = labelOf.size));
    return label;
  });
  return { labels, count: labelOf.size };
}

/** A pair document whose label sits on the root and on both chunks (Finetuner's layout). */
export function labeledPair(text: string, imageUri: string, label: number): Document {
  const tags = { [LABEL_TAG]: label };
  return new Document({
    tags,
    chunks: [
      { text, modality: 'text', tags: { ...tags } },
      { uri: imageUri, modality: 'image', tags: { ...tags } },
    ],
  });
}
