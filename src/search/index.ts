// Vector search over CLIP embeddings: the embedded folder index (exact or HNSW), the Postgres +
// pgvector adapter, and openIndex() that picks one from a spec string.

export type { IndexEntry, IndexItem, Metadata, SearchHit, SearchOptions, StoredItem, VectorIndex } from './index_types.js';
export { FolderIndex, openFolderIndex } from './folder_index.js';
export type { FolderIndexInfo, FolderIndexKind, FolderIndexOptions } from './folder_index.js';
export { PgVectorIndex, openPgVectorIndex } from './pgvector_index.js';
export type { PgVectorIndexOptions, SqlClient, SqlPool } from './pgvector_index.js';
export { Sql } from './pg_sql.js';
export { indexesRoot, openIndex, openPgDatabase, resolveIndexSpec } from './open_index.js';
export type { IndexLocation, OpenIndexOptions, PgDatabaseOptions } from './open_index.js';
export { DEFAULT_HNSW } from './hnsw_graph.js';
export type { HnswParams } from './hnsw_graph.js';
export { modelIdOf } from './model_id.js';
