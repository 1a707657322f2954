// Finetuner's `encode`: embed captions or images with one tower, batch by batch, and set each
// Document's `embedding`. Every item's modality is checked before any model runs.

import { l2NormalizeRows } from '../models/clip/embedding_utils.js';
import { Document } from '../data/document.js';
import { ConfigError } from '../errors.js';
import type { Embeddings } from '../models/clip/clip_model.js';
import type { InferenceModel } from './get_model.js';
import { fetchImage, imageOf, textOf } from './inputs.js';
import type { EncodeData } from './inputs.js';

export interface InferenceEncodeOptions {
  /** Items per model run (default 32). */
  batchSize?: number;
  /** L2-normalise each embedding, e/‖e‖, as CLIP compares them by cosine (default true). */
  normalize?: boolean;
  /** Images decoded in parallel (default 4). */
  concurrency?: number;
}

/**
 * Embeddings of `data` ([n, embedDim], in input order). Documents (and the pairs among them) get
 * their row as `embedding` (a copy); strings are captions for clip-text and image paths or URIs
 * for clip-vision.
 */
export async function encode(model: InferenceModel, data: EncodeData, opts: InferenceEncodeOptions = {}): Promise<Embeddings> {
  const bs = opts.batchSize ?? 32;
  if (!Number.isInteger(bs) || bs < 1) throw new ConfigError('batchSize', `must be a positive integer, got ${bs}`);
  const items = [...data] as (string | Document)[];
  const dim = model.embedDim;
  const out = new Float32Array(items.length * dim);
  if (model.selectModel === 'clip-text') {
    const texts = items.map((x, i) => textOf(x, i));
    for (let i = 0; i < texts.length; i += bs) out.set(await model.encodeTextBatch(texts.slice(i, i + bs)), i * dim);
  } else {
    const refs = items.map((x, i) => imageOf(x, i));
    for (let i = 0; i < refs.length; i += bs) {
      const batch = await Promise.all(refs.slice(i, i + bs).map(fetchImage));
      out.set(await model.encodeImageBatch(batch, opts.concurrency ?? 4), i * dim);
    }
  }
  if (opts.normalize ?? true) l2NormalizeRows(out, dim);
  items.forEach((x, i) => {
    if (x instanceof Document) x.embedding = out.slice(i * dim, (i + 1) * dim);
  });
  return { data: out, shape: [items.length, dim] };
}
