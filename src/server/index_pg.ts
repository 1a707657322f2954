// A server's index in Postgres (`serve --index postgres://…/db[#name]`): the primary model's vectors
// in clipfit_idx_<name>, the compare model's in clipfit_idx_<name>_compare, the images in
// clipfit_img_<name>, all on one connection pool, so an add or a delete is one transaction over the
// three. No owner lock: any number of servers (replicas) may serve one index at once; the database
// orders their writes, and each index's label row (model, dim) keeps a server of another model out.

import type { VectorIndex } from '../search/index_types.js';
import { openPgDatabase } from '../search/open_index.js';
import type { Sql } from '../search/pg_sql.js';
import { openPgVectorIndex } from '../search/pgvector_index.js';
import type { CatalogStore } from './catalog.js';
import { PgImageStore } from './pg_images.js';

export interface PgServeIndex {
  store: CatalogStore;
  primary: VectorIndex;
  compare?: VectorIndex;
  sql: Sql;
  close(): Promise<void>;
}

interface Label {
  dim: number;
  model: string;
}

export async function openPgServeIndex(url: string, name: string, primary: Label, compare?: Label): Promise<PgServeIndex> {
  const sql = await openPgDatabase(url);
  const opened: VectorIndex[] = [];
  try {
    const p = await openPgVectorIndex(sql, { name, ...primary });
    opened.push(p);
    const c = compare ? await openPgVectorIndex(sql, { name: `${name}_compare`, ...compare }) : undefined;
    if (c) opened.push(c);
    const images = await PgImageStore.open(sql, name);
    return {
      store: { where: `${sql.where}#${name}`, images, transaction: (fn) => sql.transaction(fn) },
      primary: p,
      ...(c ? { compare: c } : {}),
      sql,
      close: async () => {
        for (const ix of opened) await ix.close();
        await sql.close();
      },
    };
  } catch (err) {
    await sql.close().catch(() => undefined);
    throw err;
  }
}
