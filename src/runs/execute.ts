// The body of a run, shared by the detached worker (worker.ts) and in-process runs: mark STARTED,
// call fit with hooks that write the log, metrics and progress into the store, then record the end.

import { ClipfitError, FitStoppedError } from '../errors.js';
import { createProgress } from '../train/progress.js';
import { pathToFileURL } from 'node:url';
import type { FitHooks, FitOptions, FitResult, LogLevel } from '../train/fit_types.js';
import { appendLog } from './logs.js';
import type { RunProgress, RunStore } from './store.js';

export type FitFn = (options: FitOptions, hooks: FitHooks) => Promise<FitResult>;

/** clipfit's fit, or `fit` from `jobModule` (an absolute path or URL; tests use a fake job). */
export async function loadFit(jobModule?: string): Promise<FitFn> {
  // Loaded when a run starts, so that reading the run store does not load onnxruntime.
  if (!jobModule) return (await import('../train/fit.js')).fit;
  const spec = /^(file|data):/.test(jobModule) ? jobModule : pathToFileURL(jobModule).href;
  const mod = (await import(spec)) as { fit?: unknown };
  if (typeof mod.fit !== 'function') throw new ClipfitError(`job module ${jobModule} does not export a function 'fit'`);
  return mod.fit as FitFn;
}

const CANCEL_POLL_MS = 250;
const PROGRESS_STORE_MS = 1000;

function describeError(err: unknown): { message: string; stack: string } {
  if (err instanceof Error) return { message: err.message || err.name, stack: err.stack ?? `${err.name}: ${err.message}` };
  return { message: String(err), stack: String(err) };
}

/**
 * Run `name` to a final status. Never throws for a failure of the job itself: that is the FAILED
 * status; a fit that stopped because shouldStop() said so throws FitStoppedError, which is the
 * CANCELED status. Returns the final status, or undefined when the run was no longer CREATED
 * (already canceled or deleted) and nothing was done.
 */
export async function executeRun(store: RunStore, name: string, getFit: () => Promise<FitFn>, pid = process.pid): Promise<string | undefined> {
  const log = store.logFile(name);
  const rec = store.find(name);
  if (!rec || rec.status !== 'CREATED') return undefined;
  if (rec.cancelRequest !== undefined) {
    appendLog(log, 'warn', `run canceled before the worker started: ${rec.cancelRequest}`);
    store.finish(name, 'CANCELED', { reason: rec.cancelRequest });
    return 'CANCELED';
  }
  if (!store.markStarted(name, pid)) return undefined;
  appendLog(log, 'info', `run ${name} started (experiment ${rec.experiment}, worker pid ${pid})`);

  let cancelReason: string | undefined;
  let lastCancelCheck = 0;
  let lastProgressStore = 0;
  // Finetuner-style progress and metric lines (`Training [2/5] ━━━ 12/40 0:00:05 loss: 2.419`), as log lines.
  let pendingText = '';
  const bar = createProgress({
    isTTY: false,
    write(s: string) {
      pendingText += s;
      for (let i = pendingText.indexOf('\n'); i >= 0; i = pendingText.indexOf('\n')) {
        const line = pendingText.slice(0, i).trimEnd();
        pendingText = pendingText.slice(i + 1);
        if (line) appendLog(log, 'info', line);
      }
    },
  });
  const hooks: FitHooks = {
    log: (level: LogLevel, message: string) => void appendLog(log, level, message),
    progress: (p: RunProgress) => {
      const t = Date.now();
      const epochEnd = p.step >= p.steps;
      if (epochEnd || t - lastProgressStore >= PROGRESS_STORE_MS) {
        lastProgressStore = t;
        store.setProgress(name, p);
      }
      bar.progress!(p);
    },
    metrics: (epoch: number, values: Record<string, number>) => {
      store.addMetrics(name, epoch, values);
      bar.metrics!(epoch, values);
    },
    // Reading the flag is a cheap indexed SELECT, still only done every 250 ms.
    shouldStop: () => {
      if (cancelReason !== undefined) return true;
      const t = Date.now();
      if (t - lastCancelCheck < CANCEL_POLL_MS) return false;
      lastCancelCheck = t;
      cancelReason = store.stopRequest(name);
      return cancelReason !== undefined;
    },
  };

  try {
    const fit = await getFit();
    // A fit that returns ran to its end (a cancel that came after its last shouldStop() is too late
    // to matter): FINISHED, with its artifact. A stopped fit throws FitStoppedError instead.
    const result = await fit(rec.options, hooks);
    appendLog(
      log,
      'info',
      `run FINISHED: ${result.epochs} epoch(s), ${result.steps} step(s)${result.stoppedEarly ? ' (stopped early)' : ''}; artifact ${result.artifactDir}`,
    );
    store.finish(name, 'FINISHED', { artifactDir: result.artifactDir, ...(result.stoppedEarly ? { reason: 'stopped early' } : {}) });
    return 'FINISHED';
  } catch (err) {
    if (err instanceof FitStoppedError) {
      const reason = `${cancelReason ?? store.stopRequest(name) ?? 'stopped on request'} ${err.where}`;
      appendLog(log, 'warn', `run CANCELED after ${err.epochsDone} epoch(s): ${reason}`);
      store.finish(name, 'CANCELED', { reason });
      return 'CANCELED';
    }
    const { message, stack } = describeError(err);
    appendLog(log, 'error', `run FAILED: ${stack}`);
    store.finish(name, 'FAILED', { reason: message, lastError: stack });
    return 'FAILED';
  }
}
