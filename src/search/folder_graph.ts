// The folder index's HNSW graph as derived state: built from the store's live vectors, kept in step
// with every applied record, saved beside a snapshot (graph.usearch, then graph.json naming the
// snapshot generation, size and build parameters) and loaded only when all of those still match.

import { existsSync, promises as fsp, readFileSync } from 'node:fs';
import { HnswGraph, LEGACY_HNSW, sameBuild } from './hnsw_graph.js';
import type { HnswParams } from './hnsw_graph.js';
import { searchGraph } from './graph_search.js';
import { atomicWrite, files } from './index_files.js';
import type { ScoredSlot, VectorStore } from './vector_store.js';

const ADD_CHUNK = 65536;

export class FolderGraph {
  private graph: HnswGraph | null = null;
  /** Snapshot generation of the saved copy (−1: none saved since it was built). */
  private savedFor = -1;

  constructor(
    private readonly dir: string,
    private readonly store: VectorStore,
    private readonly params: HnswParams,
  ) {}

  get present(): boolean {
    return this.graph !== null;
  }

  /** The usearch graph itself, whose scores are approximate for f16 and i8 (tests compare them with the re-ranked ones). */
  get hnsw(): HnswGraph | null {
    return this.graph;
  }

  /** The saved graph, when it was saved for this generation and size with these build parameters. */
  load(generation: number): void {
    const f = files(this.dir);
    this.graph = null;
    if (!existsSync(f.graphMeta)) return;
    try {
      const m = JSON.parse(readFileSync(f.graphMeta, 'utf8')) as { generation: number; size: number } & Partial<HnswParams>;
      // A graph saved before parameters were recorded was built with LEGACY_HNSW's.
      if (m.generation !== generation || m.size !== this.store.size || !sameBuild({ ...LEGACY_HNSW, ...m }, this.params)) return;
      const g = HnswGraph.load(f.graph, this.store.dim, this.params);
      if (!g || g.size !== this.store.size) return;
      this.graph = g;
      this.savedFor = generation;
    } catch {
      // Unreadable: left unloaded, so the index builds it again from the vectors.
    }
  }

  /** A new graph of every live vector. */
  build(): void {
    const g = new HnswGraph(this.store.dim, this.params);
    const slots = [...this.store.liveSlots()];
    for (let i = 0; i < slots.length; i += ADD_CHUNK) {
      const chunk = slots.slice(i, i + ADD_CHUNK);
      g.addMany(chunk, this.gather(chunk));
    }
    this.graph = g;
    this.savedFor = -1;
  }

  /** After a clear: an empty graph (kept when search always goes through it) or none. */
  reset(keep: boolean): void {
    this.graph = keep ? new HnswGraph(this.store.dim, this.params) : null;
    this.savedFor = -1;
  }

  remove(slot: number): void {
    this.graph?.remove(slot);
  }

  /** Slots whose vectors are new or replaced (a replaced slot was removed first). */
  addSlots(slots: readonly number[]): void {
    this.graph?.addMany(slots, this.gather(slots));
  }

  search(q: Float32Array, k: number, opts: { ef: number; keep?: (slot: number) => boolean }): ScoredSlot[] {
    return searchGraph(this.graph!, this.store, q, k, { ef: opts.ef, rerank: this.params.rerank, ...(opts.keep ? { keep: opts.keep } : {}) });
  }

  /** Built or changed since it was last saved for `generation`. */
  stale(generation: number): boolean {
    return !!this.graph && this.savedFor !== generation;
  }

  /** Saved for the snapshot of `generation` (graph file fsynced and renamed before its meta is written); without a graph, any saved one is dropped. */
  async save(generation: number): Promise<void> {
    const f = files(this.dir);
    await fsp.rm(f.graphMeta, { force: true });
    if (!this.graph) return;
    this.graph.save(`${f.graph}.tmp`);
    const fh = await fsp.open(`${f.graph}.tmp`, 'r+');
    await fh.sync();
    await fh.close();
    await fsp.rename(`${f.graph}.tmp`, f.graph);
    const { connectivity, expansionAdd, precision } = this.params;
    await atomicWrite(f.graphMeta, [Buffer.from(JSON.stringify({ generation, size: this.store.size, connectivity, expansionAdd, precision }) + '\n')]);
    this.savedFor = generation;
  }

  private gather(slots: readonly number[]): Float32Array {
    const dim = this.store.dim;
    const out = new Float32Array(slots.length * dim);
    slots.forEach((s, i) => out.set(this.store.row(s), i * dim));
    return out;
  }
}
