// `--push`: each written set of a built emoji dataset becomes a named dataset in the local store
// (data/store.ts): <prefix>-train, <prefix>-eval-in-domain, <prefix>-eval-shifted and
// <prefix>-queries-<locale>. They are pushed from the JSONL files, so the item key stays every
// document's finetuner_label; push copies the images into the store. queries-tags is not a
// Document set (one query, several relevant items) and stays a file.

import path from 'node:path';
import { loadJsonl } from '../../../data/jsonl.js';
import { push } from '../../../data/store.js';
import type { PushResult, StoreOptions } from '../../../data/store.js';
import type { EmojiManifest } from './build.js';

export interface EmojiPushOptions extends StoreOptions {
  /** Dataset names start with this (default 'emoji'). */
  namePrefix?: string;
}

/** Push the sets listed in `manifest` (written in `out`); one PushResult per dataset, in order. */
export async function pushEmojiDataset(out: string, manifest: EmojiManifest, opts: EmojiPushOptions = {}): Promise<PushResult[]> {
  const prefix = opts.namePrefix ?? 'emoji';
  const sets: [string, string][] = [
    ...Object.entries(manifest.files.sets).map(([set, f]): [string, string] => [set, f.jsonl]),
    ...Object.entries(manifest.files.queries).filter(([q]) => q !== 'tags').map(([q, f]): [string, string] => [`queries-${q}`, f]),
  ];
  const results: PushResult[] = [];
  for (const [set, file] of sets) {
    const { docs } = await loadJsonl(path.join(out, file));
    if (!docs.length) continue;
    results.push(await push(`${prefix}-${set}`, docs, { home: opts.home, env: opts.env }));
  }
  return results;
}
