// Is a process (a run's worker, an index's owner) still there? Used on every read of a live run, so
// a killed worker's run does not stay STARTED for ever, and by index locks to tell a dead owner.

import { readFileSync } from 'node:fs';

/** Fields of /proc/<pid>/stat after the command name (which may hold spaces and parentheses). */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // no /proc (macOS), or the process is gone
  }
}

/** When the process started (clock ticks since boot, Linux); identifies it across pid reuse. */
export function processStartTime(pid: number): string | undefined {
  return procStat(pid)?.[19];
}

/**
 * Is `pid` live and still the process that started the run? `kill(pid, 0)` answers "exists"; on Linux
 * /proc also tells a zombie (dead, not yet reaped: counts as gone) and, given the start time recorded
 * with the pid, a recycled pid (another process, started later) apart from the worker.
 */
export function isWorkerAlive(pid: number, startTime?: string): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStat(pid);
  if (!stat) return true;
  if (stat[0] === 'Z' || stat[0] === 'X') return false;
  return startTime === undefined || stat[19] === startTime;
}
