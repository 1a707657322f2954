// What the server searches: a primary vector index of image embeddings made by the primary model,
// optionally a compare index of the same items made by the compare model (for before/after), and
// the images themselves — the source of truth a reindex encodes again — under <dir>/images, or in
// the index's database. An index made by another model than the one serving (needsRebuild) is not
// ready: searching it is a 409 until it is rebuilt (serve --reindex). In a database that several
// servers share (replicas), a write is one transaction over the image and every index, and sizes
// are read from the database rather than remembered.

import { performance } from 'node:perf_hooks';
import type { Metadata, SearchHit, SearchSettings, VectorIndex } from '../search/index_types.js';
import { UnknownVectorIdError } from '../errors.js';
import { metadataProblem } from '../search/prepare.js';
import { badRequest, HttpError, notFound } from './http_errors.js';
import { ImageStore } from './images.js';
import { layout } from './index_open.js';
import type { ImageBlobs, ImageType } from './images.js';
import type { Encoder } from './models.js';

export type Role = 'primary' | 'compare';

export interface NewItem {
  id: string;
  bytes: Uint8Array;
  type: ImageType;
  metadata?: Metadata;
}

interface Side {
  encoder: Encoder;
  index: VectorIndex;
  size: number;
}

export interface IndexStatus {
  size: number;
  dim: number;
  model: string;
  ready: boolean;
}

/** Where the images live, and how a write spanning them and the indexes is made atomic. */
export interface CatalogStore {
  /** For messages: the index folder, or the database (no password) and index name. */
  where: string;
  images: ImageBlobs;
  /** Runs `fn` as one transaction over the images and every index; without it (a folder) the
   * steps of a failed add are undone one by one. */
  transaction?: <T>(fn: () => Promise<T>) => Promise<T>;
}

export class Catalog {
  readonly images: ImageBlobs;
  /** The index folder, or the database and index name (see CatalogStore.where). */
  readonly dir: string;
  private readonly store: CatalogStore;
  private readonly sides: Partial<Record<Role, Side>> = {};
  /** The ef every search asks for (serve --ef-search); unset, each index's own default. */
  efSearch: number | undefined;
  /** Writes run one after another, so a reindex never interleaves with an add. */
  private chain: Promise<unknown> = Promise.resolve();

  /** `at`: an index folder (images under <dir>/images), or a store. */
  constructor(at: string | CatalogStore, primary: { encoder: Encoder; index: VectorIndex }, compare?: { encoder: Encoder; index: VectorIndex }) {
    this.store = typeof at === 'string' ? { where: at, images: new ImageStore(layout(at).images) } : at;
    this.dir = this.store.where;
    this.images = this.store.images;
    this.sides.primary = { ...primary, size: 0 };
    if (compare) this.sides.compare = { ...compare, size: 0 };
  }

  async refreshSizes(): Promise<void> {
    for (const s of Object.values(this.sides)) s.size = await s.index.size();
  }

  has(role: Role): boolean {
    return this.sides[role] !== undefined;
  }

  private side(role: Role): Side {
    const s = this.sides[role];
    if (!s) throw new HttpError(400, 'bad_request', `model: no ${role} model on this server (start it with --compare MODEL)`);
    return s;
  }

  ready(role: Role): boolean {
    const s = this.side(role);
    return !s.index.needsRebuild(s.encoder.id);
  }

  status(role: Role): IndexStatus {
    const s = this.side(role);
    return { size: s.size, dim: s.index.dim, model: s.index.model, ready: this.ready(role) };
  }

  sizes(): Map<Role, number> {
    return new Map(Object.entries(this.sides).map(([r, s]) => [r as Role, s.size]));
  }

  private serial<T>(f: () => Promise<T>): Promise<T> {
    const p = this.chain.then(f, f);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private checkReady(role: Role): Side {
    const s = this.side(role);
    if (s.index.needsRebuild(s.encoder.id))
      throw new HttpError(
        409,
        'needs_reindex',
        `the ${role} index holds vectors of model ${s.index.model}, but this server encodes with ${s.encoder.id}; restart with --reindex to rebuild it from its ${s.size} stored images`,
      );
    return s;
  }

  /** Encode and store items (upsert by id); every index gets them, or none does. */
  async add(items: readonly NewItem[]): Promise<number> {
    for (const r of Object.keys(this.sides) as Role[]) this.checkReady(r);
    items.forEach((it, i) => {
      const bad = it.metadata === undefined ? null : metadataProblem(it.metadata);
      if (bad) throw badRequest(`items[${i}].metadata: ${bad}`);
    });
    // Encode outside the write queue, so concurrent adds share encoder batches.
    const sides = Object.entries(this.sides) as [Role, Side][];
    const encoded = await Promise.all(sides.map(([, s]) => s.encoder.images(items.map((i) => i.bytes))));
    const vectors = new Map<Role, Float32Array[]>(sides.map(([r], i) => [r, encoded[i]!]));
    const writeAll = async () => {
      for (const it of items) await this.images.put(it.id, it.bytes, it.type);
      for (const [r, s] of sides) {
        const v = vectors.get(r)!;
        await s.index.add(items.map((it, i) => ({ id: it.id, vector: v[i]!, ...(it.metadata ? { metadata: it.metadata } : {}) })));
      }
    };
    return this.serial(async () => {
      const tx = this.store.transaction;
      if (tx) {
        // All of it commits, or none: an unacknowledged add leaves nothing on any replica. The
        // sizes are counted inside, so the answer needs nothing after the COMMIT.
        await this.inTransaction(tx, writeAll);
        return this.sides.primary!.size;
      }
      // Images first (an acknowledged vector always has its image); if a later step fails, the
      // images of ids that were not in the index before are taken back out.
      const fresh = [];
      for (const it of items) if (!(await this.sides.primary!.index.get(it.id))) fresh.push(it.id);
      try {
        await writeAll();
      } catch (err) {
        for (const id of fresh) if (!(await this.sides.primary!.index.get(id))) await this.images.remove(id).catch(() => undefined);
        throw err;
      } finally {
        await this.refreshSizes().catch(() => undefined);
      }
      return this.sides.primary!.size;
    });
  }

  /**
   * `write` and a recount of every index as one transaction, so the answer needs nothing after the
   * COMMIT; if it rolls back, the sizes are the ones from before (no query: the database may be
   * gone, or a lock may hold it).
   */
  private async inTransaction(tx: NonNullable<CatalogStore['transaction']>, write: () => Promise<void>): Promise<void> {
    const before = [...Object.values(this.sides)].map((s) => s.size);
    try {
      await tx(async () => {
        await write();
        await this.refreshSizes();
      });
    } catch (err) {
      Object.values(this.sides).forEach((s, i) => (s.size = before[i]!));
      throw err;
    }
  }

  /** Delete an id from every index and its image; 404 when the primary index lacks it. */
  remove(id: string): Promise<number> {
    const removeAll = async () => {
      const p = this.sides.primary!;
      // remove() itself says whether the id is there (get() would copy its metadata for nothing).
      try {
        await p.index.remove(id);
      } catch (err) {
        if (err instanceof UnknownVectorIdError) throw notFound(`index: no item with id ${JSON.stringify(id)}`);
        throw err;
      }
      for (const s of Object.values(this.sides))
        if (s !== p)
          await s.index.remove(id).catch((err) => {
            if (!(err instanceof UnknownVectorIdError)) throw err;
          });
      await this.images.remove(id);
    };
    return this.serial(async () => {
      const tx = this.store.transaction;
      if (tx) await this.inTransaction(tx, removeAll);
      else
        try {
          await removeAll();
        } finally {
          await this.refreshSizes().catch(() => undefined);
        }
      return this.sides.primary!.size;
    });
  }

  /** The dimension `role`'s vectors have (what a search by vector must give). */
  dim(role: Role): number {
    return this.side(role).index.dim;
  }

  /** How `role`'s index answers searches, with this server's ef. */
  searchSettings(role: Role): SearchSettings | null {
    const st = this.side(role).index.searchSettings?.();
    return st ? { ...st, efSearch: this.efSearch ?? st.efSearch } : null;
  }

  /** Top-k for a text (encoded by `role`'s model) or a vector; indexMs: the index's own time. */
  async search(role: Role, query: string | Float32Array, k: number): Promise<{ hits: SearchHit[]; indexMs: number }> {
    const s = this.checkReady(role);
    const q = typeof query === 'string' ? (await s.encoder.texts([query]))[0]! : query;
    const t0 = performance.now();
    const hits = await s.index.search(q, k, this.efSearch !== undefined ? { ef: this.efSearch } : {});
    return { hits, indexMs: performance.now() - t0 };
  }

  /**
   * Rebuild `role`'s index from the stored images with its model, keeping each item's metadata
   * (read from the primary index, or from this one). Returns the number of items indexed.
   */
  reindex(role: Role, batch = 32): Promise<number> {
    return this.serial(async () => {
      const s = this.side(role);
      const stored = await this.images.list();
      const metaOf = new Map<string, Metadata | undefined>();
      for (const { id } of stored) {
        const it = (await this.sides.primary!.index.get(id)) ?? (await s.index.get(id));
        metaOf.set(id, it?.metadata);
      }
      await s.index.clear(s.encoder.id);
      for (let i = 0; i < stored.length; i += batch) {
        const chunk = stored.slice(i, i + batch);
        const bytes = await Promise.all(
          chunk.map(async (c) => {
            const b = await this.images.read(c.id);
            if (!b) throw new HttpError(500, 'internal', `image ${c.id} vanished from ${this.dir} during the rebuild`);
            return b;
          }),
        );
        const v = await s.encoder.images(bytes);
        await s.index.add(chunk.map((c, j) => ({ id: c.id, vector: v[j]!, ...(metaOf.get(c.id) ? { metadata: metaOf.get(c.id)! } : {}) })));
      }
      await s.index.flush();
      s.size = await s.index.size();
      return s.size;
    });
  }

  /** A compare index missing items of the primary one (made before --compare was given) needs filling. */
  async outOfStep(role: Role): Promise<boolean> {
    const s = this.side(role);
    return !this.ready(role) || (await s.index.size()) !== (await this.images.list()).length;
  }

  async close(): Promise<void> {
    await this.chain;
    for (const s of Object.values(this.sides)) {
      await s.index.flush();
      await s.index.close();
    }
  }
}
