// Starting a run: record it as CREATED, then spawn its worker detached (own process group, no
// terminal, unref'd) so the caller may exit at once; or, with detach: false, run it in this process.

import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ExperimentError, RunError } from '../errors.js';
import type { FitOptions } from '../train/fit_types.js';
import { executeRun, loadFit } from './execute.js';
import { appendLog } from './logs.js';
import { runArtifactFor } from './model_spec.js';
import { Run } from './run.js';
import { isFinal, isWorkerAlive, RunStore, type ExperimentInfo } from './store.js';

export interface StoreOption {
  /** Run store root (default $CLIPFIT_HOME or ~/.cache/clipfit). */
  home?: string;
}

export interface StartRunOptions extends StoreOption {
  /**
   * true (default): a detached worker process runs the fit and outlives the caller.
   * false: the fit runs in this process (still recorded in the store); `inProcess` of the result
   * settles when it ends.
   */
  detach?: boolean;
  /** Absolute path of a module exporting `fit(options, hooks)` to run instead of clipfit's (tests). */
  jobModule?: string;
}

/** How to start the worker: under tsx from the sources, plain node from dist/. */
export function workerCommand(): { execPath: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  const ext = path.extname(here);
  const worker = path.join(path.dirname(here), `worker${ext}`);
  // An absolute loader URL: `--import tsx` would be resolved from the caller's cwd, which may be anywhere.
  const args = ext === '.ts' ? ['--import', import.meta.resolve('tsx'), worker] : [worker];
  return { execPath: process.execPath, args };
}

/** Runs started with detach: false, to their settling promise. */
const inProcessRuns = new Map<string, Promise<unknown>>();

/** Settles when an in-process run (detach: false) of this process ends; undefined for other runs. */
export function inProcessRun(name: string): Promise<unknown> | undefined {
  return inProcessRuns.get(name);
}

export function startRun(options: FitOptions, opts: StartRunOptions = {}): Run {
  const store = RunStore.open(opts.home);
  const jobModule = opts.jobModule !== undefined ? path.resolve(opts.jobModule) : undefined;
  // A run name or run folder as the model: fine-tune that run's artifact (fit itself takes folders and name::tag).
  const artifact = options.model !== undefined ? runArtifactFor(options.model, opts.home) : null;
  if (artifact) options = { ...options, model: artifact };
  const rec = store.createRun({ options, ...(jobModule ? { jobModule } : {}), cwd: process.cwd(), inProcess: opts.detach === false });
  const name = rec.name;
  appendLog(store.logFile(name), 'info', `run ${name} created`);

  if (opts.detach === false) {
    const p = executeRun(store, name, () => loadFit(jobModule)).finally(() => inProcessRuns.delete(name));
    inProcessRuns.set(name, p);
    return new Run(store, name);
  }

  spawnWorker(store, name, rec.dir, rec.cwd, jobModule);
  return new Run(store, name);
}

/** Start the detached worker of a CREATED run. */
function spawnWorker(store: RunStore, name: string, dir: string, cwd: string, jobModule?: string): void {
  const { execPath, args } = workerCommand();
  // The worker's own stdout/stderr go to a file in the run folder: a crash before it can log (a bad
  // install, a syntax error) still leaves a trace there.
  const out = openSync(path.join(dir, 'worker.out'), 'a');
  let child;
  try {
    child = spawn(execPath, [...args, store.home, name, ...(jobModule ? [jobModule] : [])], {
      detached: true,
      stdio: ['ignore', out, out],
      cwd,
      env: process.env,
    });
  } catch (err) {
    store.finish(name, 'FAILED', { reason: `could not start the worker: ${(err as Error).message}` });
    throw new RunError(name, `could not start the worker: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(out);
  }
  child.on('error', (err) => {
    appendLog(store.logFile(name), 'error', `could not start the worker: ${err.message}`);
    store.finish(name, 'FAILED', { reason: `could not start the worker: ${err.message}` });
  });
  if (child.pid !== undefined) store.setPid(name, child.pid);
  child.unref();
}

/**
 * Run a FAILED or CANCELED run again in a new worker: fit() finds the run's epoch checkpoints in its
 * folder and resumes from the newest, reaching the same final weights as an uninterrupted run.
 */
export function resumeRun(name: string, opts: StoreOption = {}): Run {
  const store = RunStore.open(opts.home);
  const rec = store.get(name);
  // A canceled run's worker may still be finishing its step: a second one would train into the same folder.
  if (rec.pid !== undefined && !rec.inProcess && isWorkerAlive(rec.pid, rec.pidStart))
    throw new RunError(name, `its worker (pid ${rec.pid}) is still running; wait for it to exit before resuming`);
  if (!store.reopen(name)) throw new RunError(name, `is ${rec.status}; only a FAILED or CANCELED run can be resumed`);
  appendLog(store.logFile(name), 'info', `run ${name} resumed`);
  spawnWorker(store, name, rec.dir, rec.cwd, rec.jobModule);
  return new Run(store, name);
}

export function getRun(name: string, opts: StoreOption = {}): Run {
  const store = RunStore.open(opts.home);
  store.get(name);
  return new Run(store, name);
}

/** Runs, oldest first. */
export function listRuns(opts: StoreOption & { experiment?: string } = {}): Run[] {
  const store = RunStore.open(opts.home);
  return store.list(opts.experiment !== undefined ? { experiment: opts.experiment } : {}).map((r) => new Run(store, r.name));
}

/**
 * Delete a run's rows, metrics and folder. A live run (CREATED or STARTED with a live worker) is
 * refused unless `force`, which kills its worker first (SIGKILL: the run is going away anyway).
 */
export async function deleteRun(name: string, opts: StoreOption & { force?: boolean } = {}): Promise<void> {
  const store = RunStore.open(opts.home);
  const rec = store.get(name);
  if (!isFinal(rec.status)) {
    if (!opts.force) {
      throw new RunError(name, `is ${rec.status}${rec.pid ? ` (worker pid ${rec.pid})` : ''}; cancel it first or delete with force`);
    }
    store.requestCancel(name, 'deleted');
    store.finish(name, 'CANCELED', { reason: 'deleted' });
    // An in-process run stops at its next shouldStop(); wait for it so it writes nothing more.
    await inProcessRuns.get(name);
    if (rec.pid !== undefined && !rec.inProcess && isWorkerAlive(rec.pid, rec.pidStart)) {
      try {
        process.kill(rec.pid, 'SIGKILL');
      } catch {
        // gone already
      }
      for (let i = 0; i < 50 && isWorkerAlive(rec.pid, rec.pidStart); i++) await new Promise((r) => setTimeout(r, 20));
    }
  }
  store.removeRun(name);
}

export function listExperiments(opts: StoreOption = {}): ExperimentInfo[] {
  return RunStore.open(opts.home).listExperiments();
}

export function createExperiment(name: string, opts: StoreOption = {}): void {
  RunStore.open(opts.home).ensureExperiment(name);
}

/** Delete an experiment and all its runs (a live run refuses unless `force`, as in deleteRun). */
export async function deleteExperiment(name: string, opts: StoreOption & { force?: boolean } = {}): Promise<void> {
  const store = RunStore.open(opts.home);
  if (!store.hasExperiment(name)) {
    throw new ExperimentError(name, `no such experiment in the run store ${store.home}`);
  }
  const runs = store.list({ experiment: name });
  const live = runs.filter((r) => !isFinal(r.status));
  if (live.length && !opts.force) {
    throw new RunError(live[0]!.name, `is ${live[0]!.status} in experiment '${name}'; cancel it first or delete with force`);
  }
  for (const r of runs) await deleteRun(r.name, opts);
  store.removeExperiment(name);
}
