// The embedded vector index: one folder, the log is the truth (index_files.ts has the layout).
// add/remove/clear append a crc-framed record and fsync before they resolve, then change the
// in-memory state; open replays snapshot + log and cuts a torn tail, so a SIGKILL at any moment
// loses only writes that were never acknowledged. Vectors are L2-normalised on add and scored by
// dot product = cosine. Search is exact (brute force over the contiguous store) or, above
// `hnswThreshold` items or with kind 'hnsw', approximate through a usearch HNSW graph that is
// derived from the vectors: saved at compaction for that snapshot generation, rebuilt otherwise.
// The graph's parameters are recorded in meta.json: a reopened index uses them, and options that
// change them are recorded in turn (info().hnswChange says what changed; a changed connectivity,
// expansionAdd or precision means the graph is built again at open).

import { existsSync, promises as fsp, statSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { ConfigError, CorruptIndexError, UnknownVectorIdError } from '../errors.js';
import { DEFAULT_HNSW, hnswParams, LEGACY_HNSW, paramChange, sameBuild } from './hnsw_graph.js';
import type { HnswParams } from './hnsw_graph.js';
import { FolderGraph } from './folder_graph.js';
import {
  INDEX_FORMAT, LOG_HEADER_BYTES, atomicWrite, files, intactSuffix, logHeader, readFramed, readLogGeneration,
  readMeta, syncDir, writeAll, writeMeta,
} from './index_files.js';
import { lockFolderForOpen } from './index_lock.js';
import type { IndexLock } from './index_lock.js';
import { readSnapshot, writeSnapshot } from './snapshot.js';
import type { IndexEntry, IndexItem, Metadata, SearchHit, SearchOptions, SearchSettings, StoredItem, VectorIndex } from './index_types.js';
import { T_CLEAR, T_DELETE, T_SLOTS, T_UPSERT, decodePayload, encodeClear, encodeDelete, encodeItems } from './records.js';
import type { DecodedRecord } from './records.js';
import { VectorStore } from './vector_store.js';
import { prepareItems, prepareQuery } from './prepare.js';
import type { Prepared } from './prepare.js';

export type FolderIndexKind = 'auto' | 'exact' | 'hnsw';

export interface FolderIndexOptions {
  /** Vector dimension: needed to create the index, checked against an existing one. */
  dim?: number;
  /** Embedding model id: needed to create the index; an existing index keeps its own (see needsRebuild). */
  model?: string;
  /** 'exact': brute force only; 'hnsw': always the graph; 'auto' (default): the graph from hnswThreshold items. */
  kind?: FolderIndexKind;
  /** Size from which 'auto' searches the graph (default 20 000). */
  hnswThreshold?: number;
  /** Graph parameters: a new index records DEFAULT_HNSW with these; an existing one its own with these. */
  hnsw?: Partial<HnswParams>;
  /** add() compacts once the log passes this many bytes and the snapshot's size (default 256 MiB). */
  compactBytes?: number;
  /** Called once the handle is closed (a wrapper's own lock is released here); passed on by replaceAll. */
  onClose?: () => Promise<void>;
}

export interface FolderIndexInfo {
  backend: 'folder';
  dir: string;
  dim: number;
  model: string;
  size: number;
  kind: FolderIndexKind;
  /** Whether search currently goes through the HNSW graph. */
  approximate: boolean;
  generation: number;
  logBytes: number;
  /** Bytes of torn tail cut from the log when it was opened. */
  truncatedBytes: number;
  /** The graph parameters recorded in meta.json (used when search goes through the graph). */
  hnsw: HnswParams;
  /** What this open changed in the recorded parameters ('' when nothing), and whether the graph was built again for it. */
  hnswChange: string;
}

export async function openFolderIndex(dir: string, opts: FolderIndexOptions = {}): Promise<FolderIndex> {
  return FolderIndex.open(dir, opts);
}

export class FolderIndex implements VectorIndex {
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;
  private broken: Error | null = null;
  private replaying = false;
  private log!: FileHandle;
  private logEnd = LOG_HEADER_BYTES;
  private generation = 0;
  private truncatedBytes = 0;
  private hnswChange = '';
  private readonly threshold: number;
  private readonly compactBytes: number;
  private readonly graph: FolderGraph;

  private constructor(
    readonly dir: string,
    readonly dim: number,
    private currentModel: string,
    readonly kind: FolderIndexKind,
    private readonly opts: FolderIndexOptions,
    private readonly store: VectorStore,
    private readonly lock: IndexLock,
    private readonly params: HnswParams,
  ) {
    this.threshold = opts.hnswThreshold ?? 20_000;
    this.compactBytes = opts.compactBytes ?? 256 << 20;
    this.graph = new FolderGraph(dir, store, params);
  }

  get model(): string {
    return this.currentModel;
  }

  /** `held`: the folder's lock, already taken by this process (a rebuild swap hands it over). */
  static async open(dirIn: string, opts: FolderIndexOptions, held?: IndexLock): Promise<FolderIndex> {
    const dir = path.resolve(dirIn);
    const f = files(dir);
    const kind = opts.kind ?? 'auto';
    if (!['auto', 'exact', 'hnsw'].includes(kind)) throw new ConfigError('kind', `must be 'auto', 'exact' or 'hnsw', got ${JSON.stringify(kind)}`);
    const creating = opts.dim !== undefined && opts.model !== undefined;
    if (creating && (!Number.isInteger(opts.dim) || opts.dim! < 1)) throw new ConfigError('dim', `must be a positive integer, got ${opts.dim}`);
    if (!held && !existsSync(dir) && !existsSync(`${dir}.old`) && !creating) throw new ConfigError('dim', `no index at ${dir}; give dim and model to create one`);
    const lock = held ?? (await lockFolderForOpen(dir));
    let idx: FolderIndex | undefined;
    try {
      if (!existsSync(f.meta)) {
        if (existsSync(f.snapshot) || existsSync(f.log)) throw new CorruptIndexError(f.meta, 'missing, but the folder holds index files (snapshot.bin / log.bin)');
        if (!creating) throw new ConfigError('dim', `no index at ${dir}; give dim and model to create one`);
        // meta.json first and alone: load() creates the missing log, so a crash here leaves either
        // nothing or a complete, empty index.
        await writeMeta(f.meta, { format: INDEX_FORMAT, dim: opts.dim!, model: opts.model!, metric: 'cosine', created: new Date().toISOString(), hnsw: hnswParams(DEFAULT_HNSW, opts.hnsw) });
      }
      // Leftovers of a rebuild that died before its swap (whoever rebuilds holds this lock).
      await fsp.rm(`${dir}.rebuild`, { recursive: true, force: true });
      const meta = readMeta(f.meta);
      if (opts.dim !== undefined && opts.dim !== meta.dim) throw new ConfigError('dim', `the index holds dimension ${meta.dim}, asked for ${opts.dim}`, f.meta);
      const recorded = meta.hnsw ?? LEGACY_HNSW;
      const params = hnswParams(recorded, opts.hnsw);
      idx = new FolderIndex(dir, meta.dim, meta.model, kind, opts, new VectorStore(meta.dim), lock, params);
      const change = paramChange(recorded, params);
      if (change) idx.hnswChange = sameBuild(recorded, params) ? change : `${change} (the graph is built again)`;
      await idx.load();
      if (idx.currentModel !== meta.model || change || !meta.hnsw) await writeMeta(f.meta, { ...meta, model: idx.currentModel, hnsw: params });
      return idx;
    } catch (err) {
      await idx?.log?.close().catch(() => undefined);
      await lock.release();
      throw err;
    }
  }

  private async load(): Promise<void> {
    const f = files(this.dir);
    if (existsSync(f.snapshot)) {
      const h = await readSnapshot(f.snapshot, this.store);
      this.generation = h.generation;
      this.currentModel = h.model;
    }
    this.store.seal();
    if (this.kind !== 'exact') this.graph.load(this.generation);
    if (!existsSync(f.log)) await atomicWrite(f.log, [logHeader(this.generation)]);
    this.log = await fsp.open(f.log, 'r+');
    const lg = await readLogGeneration(this.log, f.log);
    if (lg > this.generation) throw new CorruptIndexError(f.log, `log generation ${lg} is newer than the snapshot's (${this.generation}): the snapshot is missing or stale`);
    if (lg < this.generation) await this.resetLog(); // already folded into the snapshot
    const size = (await this.log.stat()).size;
    let pos = LOG_HEADER_BYTES;
    this.replaying = true;
    while (pos < size) {
      const r = await readFramed(this.log, pos, size);
      if (!r.ok) {
        // Only the last, unacknowledged write can be torn; good records after a bad one are damage.
        const intact = await intactSuffix(this.log, pos, size);
        if (intact !== null)
          throw new CorruptIndexError(
            f.log,
            `record at byte ${pos}: ${r.why}, and good records follow it from byte ${intact} (damage, not a torn tail); run clipfit index repair to keep every intact record`,
          );
        this.truncatedBytes = size - pos;
        await this.log.truncate(pos);
        await this.log.datasync();
        break;
      }
      let rec: DecodedRecord;
      try {
        rec = decodePayload(r.payload, this.dim);
      } catch (err) {
        throw new CorruptIndexError(f.log, `record at byte ${pos}: ${(err as Error).message}`, { cause: err });
      }
      if (rec.type === T_SLOTS) throw new CorruptIndexError(f.log, `record at byte ${pos}: a snapshot record in the log`);
      this.apply(rec);
      pos = r.next;
    }
    this.replaying = false;
    this.logEnd = pos;
    if (!this.graph.present && this.wantGraph()) this.graph.build();
  }

  /** Whether search goes through the graph (it exists and the size or kind asks for it). */
  private approximate(): boolean {
    return this.graph.present && this.wantGraph();
  }

  private wantGraph(): boolean {
    return this.kind === 'hnsw' || (this.kind === 'auto' && this.store.size >= this.threshold);
  }

  /** Apply one record to the store and the graph (at replay and after each acknowledged write). */
  private apply(rec: DecodedRecord | { type: typeof T_UPSERT; items: Prepared[] }): void {
    if (rec.type === T_DELETE) {
      const slot = this.store.delete(rec.id);
      if (slot !== undefined) this.graph.remove(slot);
    } else if (rec.type === T_CLEAR) {
      this.store.clear();
      this.graph.reset(this.kind === 'hnsw');
      this.currentModel = rec.model;
    } else {
      const fresh = new Set<number>();
      for (const it of rec.items) {
        const vector = 'vectorBytes' in it ? it.vectorBytes : it.vector;
        const { slot, replaced } = this.store.upsert(it.id, it.metadata, vector);
        if (replaced) this.graph.remove(slot);
        fresh.add(slot);
      }
      if (this.graph.present) this.graph.addSlots([...fresh]);
      else if (!this.replaying && this.wantGraph()) this.graph.build();
    }
  }

  private serial<T>(fn: () => Promise<T>, evenIfBroken = false): Promise<T> {
    const run = this.chain.then(() => {
      if (this.closed) throw new ConfigError('index', `${this.dir} is closed`);
      if (this.broken && !evenIfBroken) throw new CorruptIndexError(files(this.dir).log, `a failed compaction left this handle unusable; reopen the index (${this.broken.message})`);
      return fn();
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Append records and fsync; a failed write is cut back off so later records never follow garbage. */
  private async append(records: readonly Buffer[]): Promise<void> {
    const buf = records.length === 1 ? records[0]! : Buffer.concat(records);
    try {
      await writeAll(this.log, buf, this.logEnd);
      await this.log.datasync();
    } catch (err) {
      await this.log.truncate(this.logEnd).catch(() => undefined);
      throw err;
    }
    this.logEnd += buf.length;
  }

  async add(items: readonly IndexItem[]): Promise<void> {
    const prepared = prepareItems(items, this.dim);
    if (!prepared.length) return;
    await this.serial(async () => {
      await this.append(encodeItems(prepared, false));
      this.apply({ type: T_UPSERT, items: prepared });
      if (this.logEnd > Math.max(this.compactBytes, this.snapshotBytes())) await this.compactNow();
    });
  }

  async remove(id: string): Promise<void> {
    await this.serial(async () => {
      if (!this.store.slotOf.has(id)) throw new UnknownVectorIdError(id, `at ${this.dir}`);
      await this.append([encodeDelete(id)]);
      this.apply({ type: T_DELETE, id });
    });
  }

  async clear(modelId?: string): Promise<void> {
    await this.serial(async () => {
      const model = modelId ?? this.currentModel;
      await this.append([encodeClear(model)]);
      const relabel = model !== this.currentModel;
      this.apply({ type: T_CLEAR, model });
      if (relabel) await writeMeta(files(this.dir).meta, { ...readMeta(files(this.dir).meta), model });
      await this.compactNow();
    });
  }

  async get(id: string): Promise<StoredItem | undefined> {
    const slot = this.store.slotOf.get(id);
    if (slot === undefined) return undefined;
    return { id, vector: this.store.row(slot).slice(), metadata: cloneMeta(this.store.metas[slot]) };
  }

  async size(): Promise<number> {
    return this.store.size;
  }

  /**
   * Build the new content in `<dir>.rebuild`, close this handle, then swap folders: dir → dir.old,
   * dir.rebuild → dir, remove dir.old. Both folders stay locked by this process throughout, so no
   * other process opens either mid-swap; a crash between the renames is finished by the next open.
   */
  async replaceAll(items: readonly IndexItem[], labels: { dim: number; model: string }): Promise<FolderIndex> {
    const rebuilt = `${this.dir}.rebuild`, old = `${this.dir}.old`;
    const opts = { ...this.opts, kind: this.kind, hnsw: this.params };
    const freshLock = await this.serial(async () => {
      await fsp.rm(rebuilt, { recursive: true, force: true });
      const fresh = await FolderIndex.open(rebuilt, { ...opts, dim: labels.dim, model: labels.model, onClose: undefined });
      try {
        await fresh.add(items);
        await fresh.compactNow();
      } catch (err) {
        await fresh.close().catch(() => undefined);
        throw err;
      }
      return fresh.shut(false);
    });
    await this.shut(false);
    await fsp.rm(old, { recursive: true, force: true });
    await fsp.rename(this.dir, old);
    await fsp.rename(rebuilt, this.dir);
    freshLock!.relocate(this.dir);
    await syncDir(path.dirname(this.dir));
    await fsp.rm(old, { recursive: true, force: true });
    await this.lock.release();
    return FolderIndex.open(this.dir, { ...opts, dim: undefined, model: undefined }, freshLock);
  }

  async list(): Promise<IndexEntry[]> {
    return [...this.store.liveSlots()].map((s) => ({ id: this.store.ids[s]!, metadata: cloneMeta(this.store.metas[s]) }));
  }

  needsRebuild(modelId: string): boolean {
    return modelId !== this.currentModel;
  }

  async search(query: Float32Array, k: number, opts: SearchOptions = {}): Promise<SearchHit[]> {
    const q = prepareQuery(query, k, this.dim);
    if (k === 0 || this.store.size === 0) return [];
    const { filter } = opts;
    const keep = filter ? (slot: number) => filter(this.store.ids[slot]!, this.store.metas[slot]) : undefined;
    const hit = (slot: number, score: number): SearchHit => ({ id: this.store.ids[slot]!, score, metadata: cloneMeta(this.store.metas[slot]) });
    const found = opts.exact || !this.approximate()
      ? this.store.searchExact(q, k, keep)
      : this.graph.search(q, k, { ef: opts.ef ?? this.params.expansionSearch, ...(keep ? { keep } : {}) });
    return found.map((h) => hit(h.slot, h.score));
  }

  searchSettings(): SearchSettings {
    const { connectivity, expansionAdd, precision, rerank, expansionSearch } = this.params;
    return { backend: 'folder', approximate: this.approximate(), efSearch: expansionSearch, graph: { connectivity, expansionAdd, precision, rerank } };
  }

  info(): FolderIndexInfo {
    return {
      backend: 'folder', dir: this.dir, dim: this.dim, model: this.currentModel, size: this.store.size, kind: this.kind,
      approximate: this.approximate(), generation: this.generation, logBytes: this.logEnd, truncatedBytes: this.truncatedBytes,
      hnsw: { ...this.params }, hnswChange: this.hnswChange,
    };
  }

  /** Snapshot (temp file, fsync, rename), then a fresh log of the next generation, then the graph. */
  private async compactNow(): Promise<void> {
    const f = files(this.dir);
    const next = this.generation + 1;
    await writeSnapshot(f.snapshot, this.store, { generation: next, dim: this.dim, model: this.currentModel, count: this.store.size });
    // From here the snapshot holds everything; a log of the old generation is stale.
    this.generation = next;
    try {
      await this.resetLog();
    } catch (err) {
      this.broken = err as Error;
      throw err;
    }
    await this.graph.save(this.generation);
  }

  private async resetLog(): Promise<void> {
    const f = files(this.dir);
    await this.log?.close();
    await atomicWrite(f.log, [logHeader(this.generation)]);
    this.log = await fsp.open(f.log, 'r+');
    this.logEnd = LOG_HEADER_BYTES;
  }

  /**
   * Fold the log into a new snapshot now (acknowledged writes are durable without it; this bounds
   * the log and the replay time at open).
   */
  async compact(): Promise<void> {
    await this.serial(() => this.compactNow());
  }

  /**
   * Writes are durable once acknowledged; flush compacts when the log has grown past a quarter of
   * the snapshot (at least 4 MiB), or when a graph built since open can only be saved that way.
   */
  async flush(): Promise<void> {
    await this.serial(() => this.flushNow());
  }

  private async flushNow(): Promise<void> {
    const records = this.logEnd > LOG_HEADER_BYTES;
    const graphStale = this.graph.stale(this.generation);
    if (records && (graphStale || this.logEnd > Math.max(4 << 20, this.snapshotBytes() / 4))) await this.compactNow();
    else if (!records && graphStale) await this.graph.save(this.generation);
  }

  private snapshotBytes(): number {
    const f = files(this.dir).snapshot;
    return existsSync(f) ? statSync(f).size : 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.shut(true);
    await this.opts.onClose?.();
  }

  /** Flush and close the log; release the lock, or keep it held and hand it back. */
  private async shut(release: boolean): Promise<IndexLock | undefined> {
    let error: unknown;
    await this.serial(async () => {
      try {
        if (!this.broken) await this.flushNow();
      } catch (err) {
        error = err;
      }
      this.closed = true;
      await this.log.close();
      if (release) await this.lock.release();
    }, true);
    if (error) {
      if (!release) await this.lock.release();
      throw error;
    }
    return release ? undefined : this.lock;
  }
}


const cloneMeta = (m: Metadata | undefined): Metadata | undefined => (m === undefined ? undefined : structuredClone(m));
