// The contract every vector index in clipfit search implements: an embedded folder index (exact or
// HNSW) and a Postgres + pgvector adapter. Vectors are CLIP embeddings; scores are cosine similarity.

export type Metadata = Record<string, unknown>;

export interface IndexItem {
  id: string;
  vector: Float32Array;
  metadata?: Metadata;
}

/** A stored item as returned by get(); the vector is the stored, L2-normalised copy. */
export interface StoredItem {
  id: string;
  vector: Float32Array;
  metadata: Metadata | undefined;
}

/** An id and its metadata, as list() returns them. */
export interface IndexEntry {
  id: string;
  metadata: Metadata | undefined;
}

export interface SearchHit {
  id: string;
  /** Cosine similarity in [-1, 1], higher is closer. */
  score: number;
  metadata: Metadata | undefined;
}

export interface SearchOptions {
  /** Keep only hits for which this returns true (applied before the top-k cut). */
  filter?: (id: string, metadata: Metadata | undefined) => boolean;
  /** HNSW search breadth (usearch expansion / pgvector hnsw.ef_search); ignored by exact search. */
  ef?: number;
  /** Force a brute-force scan even on an approximate index. */
  exact?: boolean;
}

/** How an index answers searches, for a server's /api/info. */
export interface SearchSettings {
  backend: 'folder' | 'pgvector';
  /** Whether searches go through an approximate (HNSW) index now, rather than a scan. */
  approximate: boolean;
  /** The ef a search uses when it names none (HNSW candidate list). */
  efSearch: number;
  /** The folder index's graph: edges per node, efConstruction, vector precision, exactly re-ranked candidates. */
  graph?: { connectivity: number; expansionAdd: number; precision: string; rerank: number };
}

export interface VectorIndex {
  /** Vector dimension, fixed for the life of the index. */
  readonly dim: number;
  /** Identifier of the embedding model the vectors came from (e.g. 'openai/clip-vit-base-patch32@<hash>'). */
  readonly model: string;
  /** Upsert by id; when the promise resolves the batch is durable (embedded: fsync'd to the log). */
  add(items: readonly IndexItem[]): Promise<void>;
  /** Delete one id; throws UnknownVectorIdError when absent. */
  remove(id: string): Promise<void>;
  get(id: string): Promise<StoredItem | undefined>;
  /** Top-k by cosine similarity, best first. */
  search(query: Float32Array, k: number, opts?: SearchOptions): Promise<SearchHit[]>;
  size(): Promise<number>;
  /** True when the index was built from another embedding model than `modelId`. */
  needsRebuild(modelId: string): boolean;
  /** Drop every item; with `modelId`, the emptied index is re-labelled for that model. */
  clear(modelId?: string): Promise<void>;
  /** Every stored id with its metadata (no vectors), for re-encoding on a model change. */
  list(): Promise<IndexEntry[]>;
  /**
   * Replace the whole content with `items`, labelled for `labels.model` at `labels.dim` (which may
   * differ from the current dimension): the new index is built beside the old one and swapped in,
   * so a crash leaves one or the other. This handle is closed; use the returned one.
   */
  replaceAll(items: readonly IndexItem[], labels: { dim: number; model: string }): Promise<VectorIndex>;
  /** How searches are answered (backend, approximate or not, default ef). */
  searchSettings?(): SearchSettings;
  /** Make every acknowledged write durable and compact where the backend does so. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

