// A throwaway PostgreSQL 15 cluster with pgvector for the tests (installed by
// scripts/setup-postgres.sh): initdb in a temporary folder, the server listening on a unix socket
// in that folder and on 127.0.0.1 at a free port only, trust authentication for its one superuser
// `clipfit`, stopped and removed by stop() (or, if the test process dies first, sent SIGQUIT on
// exit). PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` OS user.
// Without the server binaries or pgvector, startPgServer() answers null with the reason; under
// CI=true it throws instead, so a CI without Postgres fails rather than skipping.

import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

export interface PgServer {
  /** postgresql://clipfit@127.0.0.1:PORT/postgres */
  url: string;
  port: number;
  /** The folder holding the unix socket. */
  socketDir: string;
  /** A new, empty database; its URL (over TCP). */
  createDatabase(name: string): Promise<string>;
  /** Run SQL as the superuser in `db` (default postgres). */
  admin<T = Record<string, unknown>>(sql: string, params?: unknown[], db?: string): Promise<T[]>;
  /** pg_terminate_backend every other connection to `db`: what a restart or network cut does to clients. */
  dropConnections(db: string): Promise<number>;
  /** Shut the server down (fast shutdown: clients are cut off), keeping its data. */
  halt(): Promise<void>;
  /** Start it again after halt(), on the same port and data. */
  resume(): Promise<void>;
  /** Stop the server (fast shutdown) and remove its folder. */
  stop(): Promise<void>;
}

const PG_MAJOR = 15;

function binDir(): string | null {
  const fixed = `/usr/lib/postgresql/${PG_MAJOR}/bin`;
  if (existsSync(path.join(fixed, 'postgres'))) return fixed;
  try {
    const d = execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim();
    return existsSync(path.join(d, 'postgres')) ? d : null;
  } catch {
    return null;
  }
}

function sharedir(bin: string): string | null {
  try {
    return execFileSync(path.join(bin, 'pg_config'), ['--sharedir'], { encoding: 'utf8' }).trim();
  } catch {
    return `/usr/share/postgresql/${PG_MAJOR}`;
  }
}

/** uid and gid of the postgres OS user (when running as root). */
function postgresUser(): { uid: number; gid: number } | null {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':');
    if (f[0] === 'postgres') return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Why there is no server to test against, or null when there is one to start. */
function missing(bin: string | null): string | null {
  if (!bin) return `no PostgreSQL ${PG_MAJOR} server binaries (run scripts/setup-postgres.sh as root)`;
  const share = sharedir(bin);
  if (!share || !existsSync(path.join(share, 'extension', 'vector.control'))) return `pgvector is not installed into PostgreSQL ${PG_MAJOR} (run scripts/setup-postgres.sh as root)`;
  if (process.getuid?.() === 0 && !postgresUser()) return 'running as root, and there is no postgres OS user to run the server as';
  return null;
}

/** A started cluster, or null (with `reason` set) when this machine has no PostgreSQL + pgvector. */
export async function startPgServer(): Promise<PgServer | null> {
  const bin = binDir();
  const why = missing(bin);
  if (why) {
    if (process.env['CI'] === 'true') throw new Error(`CI=true and ${why}`);
    skipReason = why;
    return null;
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), 'clipfit-pg-'));
  const data = path.join(dir, 'data');
  const asUser = process.getuid?.() === 0 ? postgresUser()! : null;
  if (asUser) chownSync(dir, asUser.uid, asUser.gid);
  const runOpts = asUser ? { uid: asUser.uid, gid: asUser.gid } : {};
  execFileSync(path.join(bin!, 'initdb'), ['-D', data, '-U', 'clipfit', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'], { ...runOpts, stdio: 'pipe', cwd: dir });
  const port = await freePort();
  const url = `postgresql://clipfit@127.0.0.1:${port}/postgres`;
  const urlOf = (db: string) => `postgresql://clipfit@127.0.0.1:${port}/${db}`;
  const admin = async <T>(sql: string, params: unknown[] = [], db = 'postgres'): Promise<T[]> => {
    const c = new pg.Client({ connectionString: urlOf(db) });
    await c.connect();
    try {
      return (await c.query(sql, params)).rows as T[];
    } finally {
      await c.end();
    }
  };

  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  const onExit = () => child?.kill('SIGQUIT');
  process.once('exit', onExit);
  const launch = async () => {
    let log = '';
    const c = spawn(
      path.join(bin!, 'postgres'),
      ['-D', data, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=100', '-c', 'dynamic_shared_memory_type=mmap', '-c', 'shared_buffers=32MB'],
      { ...runOpts, cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = c;
    c.stdout!.on('data', (d: Buffer) => (log += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    exited = new Promise<void>((resolve) => c.once('exit', () => resolve()));
    // Ready when it answers a query (a few hundred ms after start).
    for (let i = 0; ; i++) {
      if (c.exitCode !== null) throw new Error(`postgres exited (${c.exitCode}) while starting:\n${log}`);
      try {
        await admin('SELECT 1');
        return;
      } catch (err) {
        if (i > 300) throw new Error(`postgres did not answer in 30 s: ${(err as Error).message}\n${log}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };
  const halt = async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
    child = null;
  };
  await launch();
  return {
    url,
    port,
    socketDir: dir,
    async createDatabase(name) {
      await admin(`CREATE DATABASE ${name}`);
      return urlOf(name);
    },
    admin,
    async dropConnections(db) {
      const rows = await admin<{ n: number }>('SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [db]);
      return rows[0]!.n;
    },
    halt,
    resume: launch,
    async stop() {
      process.off('exit', onExit);
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

let skipReason = '';
/** Why startPgServer() answered null. */
export const pgSkipReason = (): string => skipReason;
