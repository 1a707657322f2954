// Who holds an index folder. A lock is a file LOCK.<n> in the folder, created whole (written to a
// private temp name, then hard-linked into place: link() fails when the name exists), holding JSON
// that names its holder: pid, the process's start time (/proc/PID/stat field 22, clock ticks since
// boot) and the boot id, host, what the holder is ("clipfit serve"), its URL, a random nonce.
//
// The lock in force is the highest-numbered one. A holder is alive when its pid runs and that pid's
// start time and the boot id are still the recorded ones, so a process restarted with the same pid
// (pid 1 in a container) does not mistake its predecessor's lock for its own. A stale lock is never
// deleted to be taken over (two processes could each delete the other's fresh lock); the taker
// creates LOCK.<n+1> instead, which only one process can create, checks that nothing higher
// appeared meanwhile, and only then sweeps the lower, superseded files.

import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, promises as fsp } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, IndexLockedError } from '../errors.js';
import { processStartTime } from '../util/liveness.js';
import { files, syncDir } from './index_files.js';

export interface LockHolder {
  pid: number;
  /** Start time of the process (Linux: clock ticks after boot); null where the OS does not tell. */
  start: string | null;
  boot: string | null;
  host: string;
  /** What holds it, e.g. 'clipfit serve' or 'clipfit index add'. */
  purpose: string;
  /** Where a server holding it listens. */
  url?: string;
  since: string;
  nonce: string;
}

const LOCK_RE = /^LOCK\.(\d{1,15})$/;
const LEGACY = 'LOCK';

/** The start time of `pid` (Linux: /proc/PID/stat field 22), or null where the OS does not tell. */
export const processStart = (pid: number): string | null => processStartTime(pid) ?? null;

const bootId = ((): string | null => {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
})();

const MY_START = processStart(process.pid);

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Locks this process holds, by file: a holder equal to this process is alive only if listed here. */
const heldHere = new Set<string>();

/** Is the process that wrote `h` still running (the same process, not one that reuses its pid)? */
export function holderAlive(h: LockHolder, file?: string): boolean {
  if (h.host !== os.hostname()) return true; // another machine on a shared folder: cannot tell
  if (h.boot && bootId && h.boot !== bootId) return false;
  if (h.pid === process.pid && h.start === MY_START) return file === undefined || heldHere.has(file);
  if (!pidRuns(h.pid)) return false;
  if (h.start !== null) {
    const now = processStart(h.pid);
    if (now !== null && now !== h.start) return false;
  }
  return true;
}

export function describeHolder(h: LockHolder): string {
  const who = h.pid === process.pid && h.start === MY_START ? 'this process' : `process ${h.pid}${h.host !== os.hostname() ? ` on ${h.host}` : ''}`;
  return `${h.purpose} (${who}${h.url ? `, listening on ${h.url}` : ''}, since ${h.since})`;
}

function parseHolder(text: string): LockHolder | null {
  try {
    const h = JSON.parse(text) as LockHolder;
    if (h && typeof h === 'object' && Number.isInteger(h.pid) && typeof h.host === 'string' && typeof h.nonce === 'string') return h;
  } catch {
    /* not ours */
  }
  return null;
}

async function lockNumbers(dir: string): Promise<number[]> {
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  return names.flatMap((n) => {
    const m = LOCK_RE.exec(n);
    return m ? [Number(m[1])] : [];
  }).sort((a, b) => a - b);
}

/** The live holder of `dir`, if any (the highest LOCK.<n>, or a pid-only LOCK of older versions). */
export async function lockHolder(dir: string): Promise<LockHolder | null> {
  const nums = await lockNumbers(dir);
  const top = nums.at(-1);
  if (top !== undefined) {
    const file = path.join(dir, `LOCK.${top}`);
    const h = parseHolder(await fsp.readFile(file, 'utf8').catch(() => ''));
    if (h && holderAlive(h, file)) return h;
  }
  return legacyHolder(dir);
}

/** A LOCK file of an older clipfit holds a bare pid: alive if that pid runs and is not this process. */
async function legacyHolder(dir: string): Promise<LockHolder | null> {
  const file = path.join(dir, LEGACY);
  if (!existsSync(file)) return null;
  const pid = Number.parseInt(await fsp.readFile(file, 'utf8').catch(() => ''), 10);
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !pidRuns(pid)) {
    await fsp.rm(file, { force: true });
    return null;
  }
  return { pid, start: null, boot: null, host: os.hostname(), purpose: 'an older clipfit', since: '?', nonce: '' };
}

export class IndexLock {
  private released = false;
  constructor(public dir: string, public file: string, private holder: LockHolder) {}

  get info(): LockHolder {
    return this.holder;
  }

  /** The locked folder was renamed to `dir` (a rebuild swap) while held. */
  relocate(dir: string): void {
    heldHere.delete(this.file);
    this.dir = dir;
    this.file = path.join(dir, path.basename(this.file));
    heldHere.add(this.file);
  }

  /** Record more about the holder (e.g. the URL once a server listens); rewritten atomically. */
  async update(fields: Partial<Pick<LockHolder, 'purpose' | 'url'>>): Promise<void> {
    this.holder = { ...this.holder, ...fields };
    const tmp = `${this.file}.${this.holder.nonce}.tmp`;
    await fsp.writeFile(tmp, JSON.stringify(this.holder));
    await fsp.rename(tmp, this.file);
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    heldHere.delete(this.file);
    const h = parseHolder(await fsp.readFile(this.file, 'utf8').catch(() => ''));
    if (h?.nonce === this.holder.nonce) await fsp.rm(this.file, { force: true });
  }
}

/**
 * Take `dir`'s lock for `purpose`, or throw IndexLockedError naming the live holder. `label` names
 * the index in that error (default: the folder), `hint` says what to do about that holder.
 */
export async function acquireIndexLock(dir: string, purpose: string, label = dir, hint?: (h: LockHolder) => string): Promise<IndexLock> {
  await fsp.mkdir(dir, { recursive: true });
  const me: LockHolder = { pid: process.pid, start: MY_START, boot: bootId, host: os.hostname(), purpose, since: new Date().toISOString(), nonce: randomBytes(12).toString('hex') };
  const tmp = path.join(dir, `.lock-${me.nonce}.tmp`);
  await fsp.writeFile(tmp, JSON.stringify(me));
  try {
    for (let attempt = 0; attempt < 20; attempt++) {
      const nums = await lockNumbers(dir);
      const top = nums.at(-1) ?? 0;
      if (top > 0) {
        const file = path.join(dir, `LOCK.${top}`);
        const text = await fsp.readFile(file, 'utf8').catch(() => null);
        if (text === null) continue; // released or swept meanwhile: look again
        const h = parseHolder(text);
        if (h && holderAlive(h, file)) throw new IndexLockedError(label, h.pid, describeHolder(h), hint?.(h));
      }
      const legacy = await legacyHolder(dir);
      if (legacy) throw new IndexLockedError(label, legacy.pid, describeHolder(legacy), hint?.(legacy));
      const mine = path.join(dir, `LOCK.${top + 1}`);
      try {
        await fsp.link(tmp, mine);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue;
        throw err;
      }
      // Someone who saw an older top may have made a higher one meanwhile: theirs stands.
      if ((await lockNumbers(dir)).some((n) => n > top + 1)) {
        await fsp.rm(mine, { force: true });
        continue;
      }
      for (const n of nums) if (n <= top) await fsp.rm(path.join(dir, `LOCK.${n}`), { force: true });
      heldHere.add(mine);
      return new IndexLock(dir, mine, me);
    }
    throw new IndexLockedError(label, -1, 'processes racing for it (try again)');
  } finally {
    await fsp.rm(tmp, { force: true });
  }
}

/**
 * The lock of `dir`, for opening it. A rebuild swap cut between its renames (no dir, a dir.old) is
 * finished first, holding the folder that becomes dir: the complete rebuild, else the old one.
 */
export async function lockFolderForOpen(dir: string): Promise<IndexLock> {
  const rebuilt = `${dir}.rebuild`, old = `${dir}.old`;
  if (existsSync(dir) || !existsSync(old)) return acquireIndexLock(dir, 'a vector index');
  const complete = existsSync(files(rebuilt).meta);
  const from = complete ? rebuilt : old;
  const lock = await acquireIndexLock(from, 'a vector index', dir);
  try {
    if (existsSync(dir)) throw new ConfigError('index', `${dir} appeared while its interrupted swap was being finished; open it again`);
    await fsp.rename(from, dir);
    lock.relocate(dir);
    await syncDir(path.dirname(dir));
    if (complete) await fsp.rm(old, { recursive: true, force: true });
    return lock;
  } catch (err) {
    await lock.release();
    throw err;
  }
}
