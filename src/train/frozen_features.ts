// A fully frozen tower's features, computed once for the training pairs and fed to every step
// (train_graph's featureInputs) instead of running the tower again in every step of every epoch.
// Preprocessing is deterministic (no augmentation), so a pair's features never change while its
// tower is frozen.

import type { Document } from '../data/index.js';
import { pairText } from '../data/source.js';
import type { ClipModel } from '../models/clip/clip_model.js';
import type { ParamEntry } from '../runtime/params.js';
import type { Tensor } from '../runtime/session.js';
import type { BatchLoader } from './batch_loader.js';

export interface FrozenTowers {
  image: boolean;
  text: boolean;
}

/** Which towers have no trainable parameter at all (the head's logit_scale belongs to neither). */
export function frozenTowers(entries: readonly ParamEntry[], trainable: (name: string) => boolean): FrozenTowers {
  const isImage = (n: string) => n.startsWith('visual.');
  const image = entries.filter((e) => isImage(e.name));
  const text = entries.filter((e) => !isImage(e.name) && e.name !== 'logit_scale');
  return {
    image: image.length > 0 && image.every((e) => !trainable(e.name)),
    text: text.length > 0 && text.every((e) => !trainable(e.name)),
  };
}

export class FeatureCache {
  private constructor(
    private readonly dim: number,
    private readonly image: Map<Document, Float32Array> | null,
    private readonly text: Map<Document, Float32Array> | null,
  ) {}

  /**
   * The frozen towers' unnormalised features of every doc, `batchSize` docs per run, images
   * decoded by `loader` (`depth` batches ahead).
   */
  static async build(model: ClipModel, loader: BatchLoader, docs: readonly Document[], towers: FrozenTowers, batchSize: number, depth: number): Promise<FeatureCache> {
    const dim = model.embedDim;
    const chunks: Document[][] = [];
    for (let i = 0; i < docs.length; i += batchSize) chunks.push(docs.slice(i, i + batchSize));
    const rows = (docs: readonly Document[], data: Float32Array, into: Map<Document, Float32Array>) => docs.forEach((d, k) => into.set(d, data.slice(k * dim, (k + 1) * dim)));
    const image = towers.image ? new Map<Document, Float32Array>() : null;
    const text = towers.text ? new Map<Document, Float32Array>() : null;
    if (image)
      for await (const b of loader.epoch(chunks, depth, { images: true, texts: false })) {
        const n = b.docs.length;
        rows(b.docs, (await model.encodePixels(b.images!.data as Float32Array, n, { batchSize: n, normalize: false })).data, image);
      }
    if (text)
      for (const c of chunks) rows(c, (await model.encodeTexts(c.map((d) => pairText(d)), { batchSize: c.length, normalize: false })).data, text);
    return new FeatureCache(dim, image, text);
  }

  /** The `image_features` / `text_features` feeds of one batch. */
  feeds(docs: readonly Document[]): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [name, m] of [['image_features', this.image], ['text_features', this.text]] as const) {
      if (!m) continue;
      const data = new Float32Array(docs.length * this.dim);
      docs.forEach((d, k) => data.set(m.get(d)!, k * this.dim));
      out[name] = { dtype: 'float32', shape: [docs.length, this.dim], data };
    }
    return out;
  }
}
