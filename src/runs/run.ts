// The handle on one run in the store. It holds only the name: every call reads the store, so a Run
// got in another process (or after the caller came back) sees what the worker has written since.

import { copyArtifact } from './artifact.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { RunError } from '../errors.js';
import type { FitOptions } from '../train/fit_types.js';
import { formatLogEntry, followLogFile, readLogEntries, type FollowOptions, type LogEntry } from './logs.js';
import { isFinal, isWorkerAlive, type EpochMetrics, type RunProgress, type RunRecord, type RunStatus, type RunStore } from './store.js';

export interface RunStatusInfo {
  status: RunStatus;
  reason?: string;
  startedAt?: string;
  finishedAt?: string;
  /** Latest progress the worker reported (updated about once a second). */
  progress?: RunProgress;
}

export interface WaitOptions {
  /** Give up (RunError) after this many ms; default: wait for ever. */
  timeoutMs?: number;
  pollMs?: number;
}

export interface CancelOptions {
  /** Recorded as the CANCELED reason (default 'canceled by user'). */
  reason?: string;
  /** How long the worker gets to notice the flag between steps before it is sent SIGTERM (default 15 s). */
  graceMs?: number;
}

export class Run {
  private cached?: RunRecord;

  constructor(readonly store: RunStore, readonly name: string) {}

  /** Everything the store holds on the run (checks that a live run's worker still exists). */
  info(): RunRecord {
    return (this.cached = this.store.get(this.name));
  }

  private fixed(): RunRecord {
    return this.cached ?? this.info();
  }

  get experiment(): string {
    return this.fixed().experiment;
  }

  /** The options the run was started with (workDir is the run's folder). */
  get options(): FitOptions {
    return this.fixed().options;
  }

  /** The run's folder under <home>/runs/. */
  get dir(): string {
    return this.fixed().dir;
  }

  status(): RunStatusInfo {
    const r = this.info();
    const s: RunStatusInfo = { status: r.status };
    if (r.reason !== undefined) s.reason = r.reason;
    if (r.startedAt !== undefined) s.startedAt = r.startedAt;
    if (r.finishedAt !== undefined) s.finishedAt = r.finishedAt;
    if (r.progress !== undefined) s.progress = r.progress;
    return s;
  }

  /** The log so far, one formatted line per entry. */
  logs(): string {
    return this.logEntries().map((e) => formatLogEntry(e) + '\n').join('');
  }

  logEntries(): LogEntry[] {
    return readLogEntries(this.store.logFile(this.name));
  }

  /** The log from the start, then each new entry as the worker writes it; ends at a final status. */
  streamLogEntries(opts: FollowOptions = {}): AsyncIterable<LogEntry> {
    return followLogFile(this.store.logFile(this.name), () => isFinal(this.info().status), opts);
  }

  /** streamLogEntries, formatted as in logs() (without the newline). */
  async *streamLogs(opts: FollowOptions = {}): AsyncGenerator<string> {
    for await (const e of this.streamLogEntries(opts)) yield formatLogEntry(e);
  }

  metrics(): EpochMetrics[] {
    return this.store.metrics(this.name);
  }

  /** Folder of the final model, once the worker recorded it. */
  artifactDir(): string | undefined {
    return this.info().artifactDir;
  }

  /** Copy the artifact of this (FINISHED) run to `dir`, which must not exist yet. */
  async saveArtifact(dir: string): Promise<string> {
    return copyArtifact(this.name, this.status().status, this.artifactDir(), dir);
  }

  /** Resolves with the status once it is final. */
  async wait(opts: WaitOptions = {}): Promise<RunStatusInfo> {
    const pollMs = opts.pollMs ?? 200;
    const deadline = opts.timeoutMs !== undefined ? Date.now() + opts.timeoutMs : Infinity;
    for (;;) {
      const s = this.status();
      if (isFinal(s.status)) return s;
      if (Date.now() >= deadline) throw new RunError(this.name, `still ${s.status} after waiting ${opts.timeoutMs} ms`);
      await sleep(Math.max(1, Math.min(pollMs, deadline - Date.now())));
    }
  }

  /**
   * Stop the run: set the cancel flag (the worker's shouldStop() sees it between steps, and a worker
   * not started yet ends at once); if the run is still live after graceMs, SIGTERM the worker (which
   * records CANCELED as it exits; an in-process run is never signalled); if even that does not end
   * it, record CANCELED here. Resolves with
   * the final status (which may be FINISHED or FAILED if the run ended first).
   */
  async cancel(opts: CancelOptions = {}): Promise<RunStatusInfo> {
    const reason = opts.reason ?? 'canceled by user';
    const graceMs = opts.graceMs ?? 15_000;
    if (!this.store.requestCancel(this.name, reason)) return this.status();
    const { pid, inProcess } = this.info();
    if (pid === undefined) {
      // Never spawned (or still being spawned): the worker will find the flag; meanwhile the record says it.
      this.store.finish(this.name, 'CANCELED', { reason });
      return this.status();
    }
    const settled = async (ms: number): Promise<RunStatusInfo | undefined> => {
      try {
        return await this.wait({ timeoutMs: ms, pollMs: 100 });
      } catch (err) {
        if (err instanceof RunError) return undefined;
        throw err;
      }
    };
    const s = await settled(graceMs);
    if (s) return s;
    // An in-process run's pid is its caller's process: that is never signalled.
    if (!inProcess && isWorkerAlive(pid, this.info().pidStart)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // already gone
      }
      const s2 = await settled(5_000);
      if (s2) return s2;
    }
    this.store.finish(this.name, 'CANCELED', { reason: `${reason} (the worker did not stop)` });
    return this.status();
  }

  toJSON(): RunRecord {
    return this.info();
  }
}
