// The server's images in Postgres, beside the vectors: clipfit_img_<name> (id text PRIMARY KEY,
// type text, bytes bytea). Every replica reads the same rows, and an add writes an item's image and
// its vectors in one transaction (Sql.transaction), so no replica ever sees one without the other
// and a write cut short leaves neither. Uploads are capped (10 MiB by default), well inside bytea's
// 1 GiB; Postgres TOASTs (compresses, moves out of line) the large values itself.

import type { Sql } from '../search/pg_sql.js';
import { CREATE_LOCK } from '../search/pgvector_index.js';
import { CONTENT_TYPES, checkId } from './images.js';
import type { ImageBlobs, ImageType } from './images.js';

const isType = (t: string): t is ImageType => Object.hasOwn(CONTENT_TYPES, t);

export class PgImageStore implements ImageBlobs {
  private constructor(private readonly sql: Sql, readonly table: string) {}

  /** The table for index `name` (created if absent, under the same lock as the vector tables). */
  static async open(sql: Sql, name: string): Promise<PgImageStore> {
    const table = `clipfit_img_${name}`;
    await sql.transaction(async () => {
      await sql.query('SELECT pg_advisory_xact_lock($1)', [CREATE_LOCK]);
      await sql.query(`CREATE TABLE IF NOT EXISTS ${table} (id text PRIMARY KEY, type text NOT NULL, bytes bytea NOT NULL)`);
    });
    return new PgImageStore(sql, table);
  }

  async put(id: string, bytes: Uint8Array, type: ImageType): Promise<void> {
    checkId(id, 'id');
    await this.sql.query(`INSERT INTO ${this.table} (id, type, bytes) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET type = EXCLUDED.type, bytes = EXCLUDED.bytes`, [
      id,
      type,
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    ]);
  }

  async open(id: string): Promise<{ type: ImageType; body: Buffer } | null> {
    const r = (await this.sql.query(`SELECT type, bytes FROM ${this.table} WHERE id = $1`, [id])).rows[0] as { type: string; bytes: Buffer } | undefined;
    return r && isType(r.type) ? { type: r.type, body: r.bytes } : null;
  }

  async read(id: string): Promise<Uint8Array | null> {
    const r = await this.open(id);
    return r && new Uint8Array(r.body.buffer, r.body.byteOffset, r.body.byteLength);
  }

  async remove(id: string): Promise<void> {
    await this.sql.query(`DELETE FROM ${this.table} WHERE id = $1`, [id]);
  }

  async list(): Promise<{ id: string; type: ImageType }[]> {
    const rows = (await this.sql.query(`SELECT id, type FROM ${this.table} ORDER BY id`)).rows as { id: string; type: string }[];
    return rows.filter((r): r is { id: string; type: ImageType } => isType(r.type));
  }
}
