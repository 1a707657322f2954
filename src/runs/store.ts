// The run store: $CLIPFIT_HOME (default ~/.cache/clipfit)
//   runs.sqlite          experiments, runs, metrics (SQLite, WAL: the worker writes while the CLI reads)
//   runs/<name>/run.log  the run's log (JSON lines, see logs.ts)
//   runs/<name>/…        whatever fit writes: checkpoints, the artifact
// A run goes CREATED → STARTED → FINISHED | FAILED | CANCELED. Every move to a final status is a
// guarded UPDATE (… WHERE status IN ('CREATED','STARTED')), so the worker, a canceller and a reader
// that finds the worker dead can race without one overwriting another's final word.

import Database from 'better-sqlite3';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ExperimentError, RunError, RunNameTakenError, RunNotFoundError } from '../errors.js';
import { DEFAULT_MODEL } from '../models/clip/weights/registry.js';
import type { FitOptions } from '../train/fit_types.js';
import { isWorkerAlive, processStartTime } from '../util/liveness.js';
import { appendLog } from './logs.js';
import { checkName, generateName } from './names.js';
import { migrate, SCHEMA_VERSION } from './schema.js';

export { isWorkerAlive, processStartTime, SCHEMA_VERSION };

export type RunStatus = 'CREATED' | 'STARTED' | 'FINISHED' | 'FAILED' | 'CANCELED';
export const FINAL_STATUSES: readonly RunStatus[] = ['FINISHED', 'FAILED', 'CANCELED'];
export const isFinal = (s: RunStatus): boolean => FINAL_STATUSES.includes(s);
export const DEFAULT_EXPERIMENT = 'default';

export interface RunProgress {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  elapsedS: number;
}

export interface RunRecord {
  name: string;
  experiment: string;
  status: RunStatus;
  reason?: string;
  options: FitOptions;
  /** Module whose `fit` the worker calls instead of clipfit's (tests). */
  jobModule?: string;
  /** Working directory of the caller; the worker runs there so relative paths in options hold. */
  cwd: string;
  pid?: number;
  /** Start time of that process (Linux: ticks since boot), to tell it from a later one with the same pid. */
  pidStart?: string;
  /** Run inside the caller's process (detach: false), not by a worker of its own: never signalled. */
  inProcess: boolean;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  artifactDir?: string;
  /** Stack of the error that failed the run. */
  lastError?: string;
  /** Set by cancel(): the reason, which the worker's shouldStop() hook sees. */
  cancelRequest?: string;
  progress?: RunProgress;
  /** The run's folder. */
  dir: string;
}

export interface EpochMetrics {
  epoch: number;
  values: Record<string, number>;
}

export interface ExperimentInfo {
  name: string;
  createdAt: string;
  runs: number;
}

export function runsHome(home?: string, env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(home ?? env['CLIPFIT_HOME'] ?? path.join(os.homedir(), '.cache', 'clipfit'));
}

interface RunRow {
  name: string;
  experiment: string;
  status: RunStatus;
  reason: string | null;
  options: string;
  job_module: string | null;
  cwd: string;
  pid: number | null;
  pid_start: string | null;
  in_process: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  artifact_dir: string | null;
  last_error: string | null;
  cancel_request: string | null;
  progress: string | null;
}

const now = (): string => new Date().toISOString();
const opt = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

const stores = new Map<string, RunStore>();

export class RunStore {
  readonly db: Database.Database;
  readonly runsDir: string;

  private constructor(readonly home: string) {
    mkdirSync(home, { recursive: true });
    this.runsDir = path.join(home, 'runs');
    mkdirSync(this.runsDir, { recursive: true });
    const file = path.join(home, 'runs.sqlite');
    // timeout = busy timeout: a writer waits up to 10 s for another process's write lock.
    this.db = new Database(file, { timeout: 10_000 });
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = ON');
    try {
      migrate(this.db, file);
    } catch (err) {
      this.db.close();
      throw err;
    }
  }

  /** The store under `home` (default $CLIPFIT_HOME or ~/.cache/clipfit); one connection per home per process. */
  static open(home?: string): RunStore {
    const dir = runsHome(home);
    let store = stores.get(dir);
    if (!store || !store.db.open) {
      store = new RunStore(dir);
      stores.set(dir, store);
    }
    return store;
  }

  close(): void {
    stores.delete(this.home);
    if (this.db.open) this.db.close();
  }

  schemaVersion(): number {
    return (this.db.prepare('SELECT version FROM schema_version').get() as { version: number }).version;
  }

  runDir(name: string): string {
    return path.join(this.runsDir, checkName('runName', name));
  }

  logFile(name: string): string {
    return path.join(this.runDir(name), 'run.log');
  }

  // ---- runs ----

  /**
   * Record a new run as CREATED and make its folder. The options are stored with workDir set to the
   * run's folder and model (DEFAULT_MODEL when none was given), runName and experimentName filled in. A taken name (or a stale folder of that name)
   * is a RunNameTakenError; without a name one is generated.
   */
  createRun(args: { options: FitOptions; jobModule?: string; cwd?: string; inProcess?: boolean }): RunRecord {
    const given = args.options.runName;
    const experiment = checkName('experimentName', args.options.experimentName ?? DEFAULT_EXPERIMENT);
    for (let attempt = 0; ; attempt++) {
      const name = given !== undefined ? checkName('runName', given) : generateName();
      const dir = this.runDir(name);
      // The model is recorded as resolved: status shows what the run uses, and a resume loads the
      // same model even if a later clipfit ships another default.
      const options: FitOptions = { ...args.options, model: args.options.model ?? DEFAULT_MODEL, runName: name, experimentName: experiment, workDir: dir };
      const taken = (detail?: string): never => {
        throw new RunNameTakenError(name, this.home, detail);
      };
      try {
        if (this.row(name)) taken();
        if (existsSync(dir)) taken(`folder ${dir} already exists (left from a deleted run?); remove it or pick another name`);
        this.db.transaction(() => {
          this.ensureExperiment(experiment);
          this.db
            .prepare(
              `INSERT INTO runs (name, experiment, status, options, job_module, cwd, in_process, created_at)
               VALUES (?, ?, 'CREATED', ?, ?, ?, ?, ?)`,
            )
            .run(name, experiment, JSON.stringify(options), args.jobModule ?? null, args.cwd ?? process.cwd(), args.inProcess ? 1 : 0, now());
        }).immediate();
      } catch (err) {
        const code = (err as { code?: string }).code;
        const isTaken = err instanceof RunNameTakenError || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
        if (isTaken && given === undefined && attempt < 20) continue;
        if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY') taken();
        throw err;
      }
      try {
        mkdirSync(dir, { recursive: true });
      } catch (err) {
        this.db.prepare('DELETE FROM runs WHERE name = ?').run(name);
        throw new RunError(name, `cannot create the run folder ${dir}: ${(err as Error).message}`, { cause: err });
      }
      return this.get(name);
    }
  }

  private row(name: string): RunRow | undefined {
    return this.db.prepare('SELECT * FROM runs WHERE name = ?').get(name) as RunRow | undefined;
  }

  private toRecord(r: RunRow): RunRecord {
    return {
      name: r.name,
      experiment: r.experiment,
      status: r.status,
      reason: opt(r.reason),
      options: JSON.parse(r.options) as FitOptions,
      jobModule: opt(r.job_module),
      cwd: r.cwd,
      pid: opt(r.pid),
      pidStart: opt(r.pid_start),
      inProcess: r.in_process === 1,
      createdAt: r.created_at,
      startedAt: opt(r.started_at),
      finishedAt: opt(r.finished_at),
      artifactDir: opt(r.artifact_dir),
      lastError: opt(r.last_error),
      cancelRequest: opt(r.cancel_request),
      progress: r.progress === null ? undefined : (JSON.parse(r.progress) as RunProgress),
      dir: path.join(this.runsDir, r.name),
    };
  }

  /** A live-status row whose worker is gone becomes FAILED here, on read, so no run stays STARTED forever. */
  private reap(r: RunRow): RunRow {
    if ((r.status === 'CREATED' || r.status === 'STARTED') && r.pid !== null && !isWorkerAlive(r.pid, r.pid_start ?? undefined)) {
      const reason = `worker process ${r.pid} exited without finishing`;
      const changed = this.db
        .prepare(`UPDATE runs SET status = 'FAILED', reason = ?, finished_at = ? WHERE name = ? AND pid = ? AND status IN ('CREATED','STARTED')`)
        .run(reason, now(), r.name, r.pid).changes;
      if (changed) appendLog(path.join(this.runsDir, r.name, 'run.log'), 'error', `run FAILED: ${reason}`);
      return this.row(r.name) ?? r;
    }
    return r;
  }

  find(name: string): RunRecord | undefined {
    checkName('runName', name);
    const r = this.row(name);
    return r ? this.toRecord(this.reap(r)) : undefined;
  }

  get(name: string): RunRecord {
    const rec = this.find(name);
    if (!rec) throw new RunNotFoundError(name, this.home);
    return rec;
  }

  /** Runs, oldest first, optionally of one experiment. */
  list(filter: { experiment?: string } = {}): RunRecord[] {
    const rows = (
      filter.experiment !== undefined
        ? this.db.prepare('SELECT * FROM runs WHERE experiment = ? ORDER BY created_at, name').all(filter.experiment)
        : this.db.prepare('SELECT * FROM runs ORDER BY created_at, name').all()
    ) as RunRow[];
    return rows.map((r) => this.toRecord(this.reap(r)));
  }

  /** The launcher records the worker's pid as soon as it is spawned (the worker may beat it to it). */
  setPid(name: string, pid: number): void {
    this.db.prepare(`UPDATE runs SET pid = ? WHERE name = ? AND pid IS NULL AND status IN ('CREATED','STARTED')`).run(pid, name);
  }

  /** CREATED → STARTED; false when the run is no longer CREATED (canceled, failed, deleted). */
  markStarted(name: string, pid: number): boolean {
    return (
      this.db
        .prepare(`UPDATE runs SET status = 'STARTED', pid = ?, pid_start = ?, started_at = ? WHERE name = ? AND status = 'CREATED'`)
        .run(pid, processStartTime(pid) ?? null, now(), name).changes === 1
    );
  }

  /** Move a live run to a final status; false when it already had one. */
  finish(
    name: string,
    status: 'FINISHED' | 'FAILED' | 'CANCELED',
    detail: { reason?: string; artifactDir?: string; lastError?: string } = {},
  ): boolean {
    return (
      this.db
        .prepare(
          `UPDATE runs SET status = ?, reason = ?, artifact_dir = COALESCE(?, artifact_dir), last_error = COALESCE(?, last_error),
             finished_at = ? WHERE name = ? AND status IN ('CREATED','STARTED')`,
        )
        .run(status, detail.reason ?? null, detail.artifactDir ?? null, detail.lastError ?? null, now(), name).changes === 1
    );
  }

  /** FAILED | CANCELED → CREATED, to run again from its checkpoints; false for any other status. */
  reopen(name: string): boolean {
    return (
      this.db
        .prepare(
          `UPDATE runs SET status = 'CREATED', reason = NULL, pid = NULL, pid_start = NULL, finished_at = NULL,
             cancel_request = NULL, in_process = 0 WHERE name = ? AND status IN ('FAILED','CANCELED')`,
        )
        .run(name).changes === 1
    );
  }

  /** Ask the worker to stop; false when the run already has a final status. */
  requestCancel(name: string, reason: string): boolean {
    return (
      this.db
        .prepare(`UPDATE runs SET cancel_request = ? WHERE name = ? AND status IN ('CREATED','STARTED')`)
        .run(reason, name).changes === 1
    );
  }

  cancelRequest(name: string): string | undefined {
    const r = this.db.prepare('SELECT cancel_request FROM runs WHERE name = ?').get(name) as { cancel_request: string | null } | undefined;
    return r?.cancel_request ?? undefined;
  }

  /**
   * Why the worker should stop, if it should: a cancel request, or the run no longer being STARTED
   * (deleted, or given a final status by someone else).
   */
  stopRequest(name: string): string | undefined {
    const r = this.db.prepare('SELECT status, cancel_request FROM runs WHERE name = ?').get(name) as
      | { status: RunStatus; cancel_request: string | null }
      | undefined;
    if (!r) return 'the run was deleted';
    if (r.cancel_request !== null) return r.cancel_request;
    return r.status === 'STARTED' ? undefined : `the run is already ${r.status}`;
  }

  setProgress(name: string, p: RunProgress): void {
    this.db.prepare('UPDATE runs SET progress = ? WHERE name = ?').run(JSON.stringify(p), name);
  }

  /** Record the metrics of one epoch (a value given again for the same epoch replaces the old one). */
  addMetrics(name: string, epoch: number, values: Record<string, number>): void {
    const ins = this.db.prepare('INSERT OR REPLACE INTO metrics (run, epoch, name, value) VALUES (?, ?, ?, ?)');
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(values)) ins.run(name, epoch, k, Number.isNaN(v) ? null : v);
    })();
  }

  /** Metrics by epoch, ascending; NaN comes back as NaN (SQLite keeps it as NULL). */
  metrics(name: string): EpochMetrics[] {
    const rows = this.db.prepare('SELECT epoch, name, value FROM metrics WHERE run = ? ORDER BY epoch, name').all(name) as {
      epoch: number;
      name: string;
      value: number | null;
    }[];
    const out: EpochMetrics[] = [];
    for (const r of rows) {
      if (out.at(-1)?.epoch !== r.epoch) out.push({ epoch: r.epoch, values: {} });
      out.at(-1)!.values[r.name] = r.value ?? Number.NaN;
    }
    return out;
  }

  /** Remove the run's rows and folder. No state check: callers decide whether the run may go. */
  removeRun(name: string): void {
    const dir = this.runDir(name);
    this.db.prepare('DELETE FROM runs WHERE name = ?').run(name);
    rmSync(dir, { recursive: true, force: true });
  }

  // ---- experiments ----

  ensureExperiment(name: string): void {
    checkName('experimentName', name);
    this.db.prepare('INSERT OR IGNORE INTO experiments (name, created_at) VALUES (?, ?)').run(name, now());
  }

  listExperiments(): ExperimentInfo[] {
    return (
      this.db
        .prepare(
          `SELECT e.name AS name, e.created_at AS createdAt, COUNT(r.name) AS runs
           FROM experiments e LEFT JOIN runs r ON r.experiment = e.name GROUP BY e.name ORDER BY e.created_at, e.name`,
        )
        .all() as ExperimentInfo[]
    );
  }

  hasExperiment(name: string): boolean {
    return this.db.prepare('SELECT 1 FROM experiments WHERE name = ?').get(name) !== undefined;
  }

  /** Remove an experiment row; its runs must be gone already. */
  removeExperiment(name: string): void {
    const n = (this.db.prepare('SELECT COUNT(*) AS n FROM runs WHERE experiment = ?').get(name) as { n: number }).n;
    if (n > 0) throw new ExperimentError(name, `still has ${n} run(s); delete them first`);
    this.db.prepare('DELETE FROM experiments WHERE name = ?').run(name);
  }
}
