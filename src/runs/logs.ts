// A run's log: <run folder>/run.log, one JSON object per line {time, level, message}. The worker
// appends (O_APPEND, one write per entry, so concurrent readers never see half an entry except at
// the very end of the file, which the follower holds back until its newline arrives).

import { appendFileSync, closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import type { LogLevel } from '../train/fit_types.js';

export interface LogEntry {
  /** ISO 8601 time. */
  time: string;
  level: LogLevel;
  message: string;
}

/** Append one entry; returns false (instead of throwing) when the file cannot be written, e.g. the
 * run was deleted under a still-running worker: logging must never be what kills a run. */
export function appendLog(file: string, level: LogLevel, message: string): boolean {
  const entry: LogEntry = { time: new Date().toISOString(), level, message };
  try {
    appendFileSync(file, JSON.stringify(entry) + '\n');
    return true;
  } catch {
    return false;
  }
}

/** One line of run.log; a line that is not an entry (hand-edited, truncated) is kept as its text. */
export function parseLogLine(line: string): LogEntry {
  try {
    const o = JSON.parse(line) as Partial<LogEntry>;
    if (o && typeof o.message === 'string') {
      return { time: String(o.time ?? ''), level: (o.level ?? 'info') as LogLevel, message: o.message };
    }
  } catch {
    // fall through
  }
  return { time: '', level: 'info', message: line };
}

export function readLogEntries(file: string): LogEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return text.split('\n').filter((l) => l.trim().length > 0).map(parseLogLine);
}

/** `2025-01-02T03:04:05.678Z INFO  message`. */
export function formatLogEntry(e: LogEntry): string {
  return `${e.time} ${e.level.toUpperCase().padEnd(5)} ${e.message}`;
}

/** Bytes of `file` from `offset` to its current end (none when it does not exist yet). */
function readFrom(file: string, offset: number): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return Buffer.alloc(0);
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    if (size <= offset) return Buffer.alloc(0);
    const buf = Buffer.alloc(size - offset);
    let got = 0;
    while (got < buf.length) {
      const n = readSync(fd, buf, got, buf.length - got, offset + got);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

export interface FollowOptions {
  /** Stop following (the iteration just ends). */
  signal?: AbortSignal;
  /** How often to look for new lines, in ms (default 150). */
  pollMs?: number;
}

/**
 * Every entry of `file`, then each new one as it is appended, until `isDone()` holds. `isDone` is
 * checked before each read, so the read after it turns true still sees everything written before
 * the writer declared itself done (the worker logs its last line before it sets a final status).
 * Polling, not fs.watch: it works the same across processes, on network file systems and in
 * containers, and a 150 ms lag is fine for a training log.
 */
export async function* followLogFile(file: string, isDone: () => boolean, opts: FollowOptions = {}): AsyncGenerator<LogEntry> {
  const pollMs = opts.pollMs ?? 150;
  const decoder = new StringDecoder('utf8');
  let offset = 0;
  let pending = '';
  for (;;) {
    if (opts.signal?.aborted) return;
    const done = isDone();
    const chunk = readFrom(file, offset);
    offset += chunk.length;
    pending += decoder.write(chunk);
    const lines = pending.split('\n');
    pending = lines.pop()!;
    for (const line of lines) if (line.trim()) yield parseLogLine(line);
    if (done) {
      pending += decoder.end();
      if (pending.trim()) yield parseLogLine(pending);
      return;
    }
    try {
      await sleep(pollMs, undefined, opts.signal ? { signal: opts.signal } : undefined);
    } catch {
      return; // aborted
    }
  }
}
