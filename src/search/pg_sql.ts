// The SQL connection under the pgvector index and the server's Postgres image store. Either one
// connection (a PGlite, or a pg.Client) whose sessions take turns, or a pool (pg.Pool) that lends a
// connection per session; either way a transaction runs every statement of its callback on its own
// connection (AsyncLocalStorage carries it), so several stores can share one atomic write.
// Connection failures (refused, reset, server shut down, backend terminated) become
// IndexUnavailableError: the transaction in flight was rolled back by the server or never committed.

import { AsyncLocalStorage } from 'node:async_hooks';
import { IndexUnavailableError } from '../errors.js';

/** The one method a connection needs; PGlite and pg.Client both have it. */
export interface SqlClient {
  query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A connection pool (pg.Pool): connect() lends a connection until release(). */
export interface SqlPool extends SqlClient {
  connect(): Promise<PooledClient>;
  readonly totalCount: number;
  end(): Promise<void>;
}

/** A lent connection; node-postgres's also emits 'error' when its socket dies. */
export interface PooledClient extends SqlClient {
  release(destroy?: boolean | Error): void;
  on?(event: 'error', listener: (err: Error) => void): unknown;
  off?(event: 'error', listener: (err: Error) => void): unknown;
}

const isPool = (c: SqlClient | SqlPool): c is SqlPool => typeof (c as SqlPool).connect === 'function' && typeof (c as SqlPool).totalCount === 'number';

/** SQLSTATEs of a connection that is gone or refused: class 08, shutdowns, too many connections. */
const LOST_STATE = /^(08...|57P01|57P02|57P03|53300)$/;
const LOST_CODE = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOENT']);
const LOST_MESSAGE = /Connection terminated|connection error|not queryable|timeout exceeded when trying to connect|Client was closed/i;

/** Whether `err` says the database was unreachable or the connection died (rather than bad SQL). */
export function isConnectionLost(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (LOST_STATE.test(code) || LOST_CODE.has(code))) return true;
  if (err instanceof AggregateError) return err.errors.some(isConnectionLost);
  return LOST_MESSAGE.test(err.message);
}

interface Held {
  client: SqlClient;
  /** Inside BEGIN … COMMIT. */
  tx: boolean;
}

export class Sql {
  /** The connection the current async call chain holds, if any. */
  private readonly held = new AsyncLocalStorage<Held>();
  /** One connection: sessions take turns (a BEGIN must not let another caller's statement in). */
  private turn: Promise<unknown> = Promise.resolve();

  /** `where` names the database in errors (no password). */
  constructor(private readonly db: SqlClient | SqlPool, readonly where: string) {}

  /** One statement: on the connection this call chain holds, if any, else on any. */
  async query(sql: string, params?: unknown[]): Promise<{ rows: unknown[] }> {
    const h = this.held.getStore();
    if (h) return this.run(h.client, sql, params);
    if (isPool(this.db)) return this.run(this.db, sql, params);
    return this.session(() => this.run(this.db, sql, params));
  }

  private async run(c: SqlClient, sql: string, params?: unknown[]): Promise<{ rows: unknown[] }> {
    try {
      return await c.query(sql, params);
    } catch (err) {
      throw this.typed(err, sql);
    }
  }

  /** A connection-loss error as IndexUnavailableError naming the statement's verb; others as they are. */
  typed(err: unknown, sql = ''): unknown {
    if (err instanceof IndexUnavailableError || !isConnectionLost(err)) return err;
    const op = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase() ?? 'connect';
    return new IndexUnavailableError(this.where, op, (err as Error).message || String(err), { cause: err });
  }

  /** `fn` holding one connection (session settings, several statements in a row): every query()
   * inside it runs there. */
  async session<T>(fn: () => Promise<T>): Promise<T> {
    if (this.held.getStore()) return fn();
    if (isPool(this.db)) {
      let c: PooledClient;
      try {
        c = await this.db.connect();
      } catch (err) {
        throw this.typed(err, 'connect');
      }
      // A lent connection whose socket dies also emits 'error' (the pool listens only while it is
      // idle): unheard, that would end the process. The statement in flight fails on its own.
      let broken: Error | undefined;
      const onError = (err: Error) => (broken ??= err);
      c.on?.('error', onError);
      try {
        return await this.held.run({ client: c, tx: false }, fn);
      } catch (err) {
        if (err instanceof IndexUnavailableError) broken ??= err;
        throw err;
      } finally {
        c.off?.('error', onError);
        // A connection that failed is destroyed, not lent to the next caller.
        c.release(broken ?? false);
      }
    }
    const p = this.turn.then(() => this.held.run({ client: this.db, tx: false }, fn));
    this.turn = p.catch(() => undefined);
    return p;
  }

  /**
   * BEGIN … COMMIT around `fn` on one connection; every query() inside `fn` (through any store on
   * this Sql) runs in it. A transaction inside a transaction joins the outer one. Anything `fn`
   * throws rolls it back; an error at COMMIT leaves it unacknowledged.
   */
  async transaction<T>(fn: () => Promise<T>): Promise<T> {
    const h = this.held.getStore();
    if (h?.tx) return fn();
    if (!h) return this.session(() => this.transaction(fn));
    return this.held.run({ client: h.client, tx: true }, async () => {
      await this.run(h.client, 'BEGIN');
      try {
        const out = await fn();
        await this.run(h.client, 'COMMIT');
        return out;
      } catch (err) {
        await h.client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    if (isPool(this.db)) await this.db.end();
  }
}
