// The run store's SQLite schema, as a list of migrations. A store records its version in
// schema_version; opening it applies the missing migrations in one IMMEDIATE transaction, so two
// processes opening a new store at once cannot both migrate it.

import type Database from 'better-sqlite3';
import { ClipfitError } from '../errors.js';

/** Each entry upgrades the schema by one version; never edit a released entry, append a new one. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE experiments (
     name TEXT PRIMARY KEY,
     created_at TEXT NOT NULL
   );
   CREATE TABLE runs (
     name TEXT PRIMARY KEY,
     experiment TEXT NOT NULL REFERENCES experiments(name),
     status TEXT NOT NULL CHECK (status IN ('CREATED','STARTED','FINISHED','FAILED','CANCELED')),
     reason TEXT,
     options TEXT NOT NULL,
     job_module TEXT,
     cwd TEXT NOT NULL,
     pid INTEGER,
     pid_start TEXT,
     in_process INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL,
     started_at TEXT,
     finished_at TEXT,
     artifact_dir TEXT,
     last_error TEXT,
     cancel_request TEXT,
     progress TEXT
   );
   CREATE INDEX runs_by_experiment ON runs(experiment, created_at);
   CREATE TABLE metrics (
     run TEXT NOT NULL REFERENCES runs(name) ON DELETE CASCADE,
     epoch INTEGER NOT NULL,
     name TEXT NOT NULL,
     value REAL,
     PRIMARY KEY (run, epoch, name)
   );`,
];
export const SCHEMA_VERSION = MIGRATIONS.length;

export function migrate(db: Database.Database, file: string): void {
  db.transaction(() => {
    db.exec('CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)');
    const row = db.prepare('SELECT version FROM schema_version').get() as { version: number } | undefined;
    const version = row?.version ?? 0;
    if (version > SCHEMA_VERSION) {
      throw new ClipfitError(`run store ${file}: schema version ${version} is newer than this clipfit knows (${SCHEMA_VERSION}); upgrade clipfit`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    if (!row) db.prepare('INSERT INTO schema_version (version) VALUES (?)').run(SCHEMA_VERSION);
    else if (version !== SCHEMA_VERSION) db.prepare('UPDATE schema_version SET version = ?').run(SCHEMA_VERSION);
  }).immediate();
}
