// Turns a list of pair documents into the tensors of one training batch. Pixels are computed in
// the image workers and kept in a cache (preprocessing is deterministic: no augmentation), so
// only the first epoch decodes images; token ids are cut to the batch's longest caption. An image
// that fails to decode is reported against its pair's file, row and image field. epoch() gives an
// epoch's batches as an async iterable that loads ahead, so the training loop just iterates.

import type { Document } from '../data/index.js';
import { imageName } from '../data/doc_images.js';
import { withRow } from '../data/origin.js';
import type { ClipModel } from '../models/clip/clip_model.js';
import type { Tensor } from '../runtime/session.js';
import { imageInput, labelOf, pairText } from '../data/source.js';
import type { ImagePool } from './image_pool.js';

export interface Batch {
  images: Tensor;
  texts: Tensor;
  labels?: Tensor;
}

/** The batches of one epoch, in order; `waitS` is the time spent waiting for them so far. */
export interface EpochBatches extends AsyncIterable<Batch> {
  readonly steps: number;
  readonly waitS: number;
}

export class BatchLoader {
  private cache = new Map<Document, Float32Array>();
  private cachedBytes = 0;
  private labelIds = new Map<string | number, number>();

  constructor(
    private readonly pool: ImagePool,
    private readonly model: ClipModel,
    private readonly opts: { labelAware: boolean; cacheBytes: number },
  ) {}

  /**
   * The batches of one epoch. Loading starts at once, `depth` batches ahead: batches k+1 … k+depth
   * are decoded in the image workers while step k runs. A batch that fails to load fails where the
   * loop reaches it, never as an unhandled rejection while an earlier step runs.
   */
  epoch(batches: readonly (readonly Document[])[], depth: number): EpochBatches {
    const load = (docs: readonly Document[]) => {
      const b = this.load(docs);
      b.catch(() => undefined);
      return b;
    };
    const ahead = batches.slice(0, depth).map(load);
    let waitS = 0;
    return {
      steps: batches.length,
      get waitS() {
        return waitS;
      },
      async *[Symbol.asyncIterator]() {
        for (let k = 0; k < batches.length; k++) {
          const t = performance.now();
          let batch: Batch;
          try {
            batch = await ahead.shift()!;
          } finally {
            waitS += (performance.now() - t) / 1000;
          }
          if (k + depth < batches.length) ahead.push(load(batches[k + depth]!));
          yield batch;
        }
      },
    };
  }

  async load(docs: readonly Document[]): Promise<Batch> {
    const pp = this.model.config.preprocess_cfg;
    const per = 3 * pp.image_size * pp.image_size;
    const pixels = new Float32Array(docs.length * per);
    const missing = docs.map((d, i) => [d, i] as const).filter(([d]) => !this.cache.has(d));
    if (missing.length) {
      const names = missing.map(([d]) => imageName(d));
      const fresh = await this.pool.preprocess(missing.map(([d]) => imageInput(d)), names, { size: pp.image_size, mean: pp.mean, std: pp.std }).catch((err: unknown) => {
        throw withRow(err, missing.map(([d]) => d), names);
      });
      missing.forEach(([d], k) => {
        const px = fresh.subarray(k * per, (k + 1) * per);
        if (this.cachedBytes + px.byteLength <= this.opts.cacheBytes) {
          this.cache.set(d, px);
          this.cachedBytes += px.byteLength;
        }
      });
      missing.forEach(([, i], k) => pixels.set(fresh.subarray(k * per, (k + 1) * per), i * per));
    }
    docs.forEach((d, i) => {
      const px = this.cache.get(d);
      if (px && !missing.some(([m]) => m === d)) pixels.set(px, i * per);
    });
    const b: Batch = {
      images: { dtype: 'float32', shape: [docs.length, 3, pp.image_size, pp.image_size], data: pixels },
      texts: this.model.tokenize(docs.map((d) => pairText(d))),
    };
    if (this.opts.labelAware) {
      const ids = docs.map((d) => {
        const l = labelOf(d, d.id);
        if (!this.labelIds.has(l)) this.labelIds.set(l, this.labelIds.size);
        return BigInt(this.labelIds.get(l)!);
      });
      b.labels = { dtype: 'int64', shape: [docs.length], data: BigInt64Array.from(ids) };
    }
    return b;
  }

  static feeds(b: Batch): Record<string, Tensor> {
    return { images: b.images, texts: b.texts, ...(b.labels ? { labels: b.labels } : {}) };
  }
}
