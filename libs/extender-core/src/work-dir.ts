/**
 * Per-run work directories under the work root (`<extend-dir>/work` by default).
 *
 * A run's directory carries its owner in its name: `<kind>-<pid>-<pid-namespace>-<start-time>-<random>`,
 * the start time being the process's `starttime` from `/proc/<pid>/stat` (clock ticks since
 * boot), so that a pid that was reused by another process does not keep a dead run's
 * directory alive. A run removes its own directory when it ends, also after a failure or a
 * signal; a run that was killed (SIGKILL, the OOM killer) cannot, and the next run on the same
 * work root prunes its directory before creating its own.
 *
 * Whether a process is gone can only be told in the pid namespace it ran in: extenders in
 * other containers share the extend dir (pack runs build and run extension at once on one
 * volume), so their directories are left alone until they are a day old, as the in-place
 * layer cache does with its staging directories.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Work directories of another pid namespace (or without an owner we can check) older than this are pruned. */
export const FOREIGN_WORK_DIR_MAX_AGE_MS = 24 * 60 * 60 * 1000;

/** Who owns a work directory, as written in its name. */
export interface WorkDirOwner {
  pid: number;
  /** Inode of the owner's pid namespace (`/proc/self/ns/pid`), '' when unknown. */
  pidNamespace: string;
  /** The owner's `starttime` (`/proc/<pid>/stat`, field 22), '' when unknown. */
  startTime: string;
}

/** This process's pid namespace (the inode in `/proc/self/ns/pid`), or '' when /proc does not tell. */
export function currentPidNamespace(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/pid'))?.[1] ?? '';
  } catch {
    return '';
  }
}

/**
 * A process's start time in clock ticks since boot (`/proc/<pid>/stat`, field 22), or
 * undefined when the process does not exist (or /proc cannot be read).
 */
export function processStartTime(pid: number, proc = '/proc'): string | undefined {
  let stat: string;
  try {
    stat = readFileSync(join(proc, String(pid), 'stat'), 'utf8');
  } catch {
    return undefined;
  }
  // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so count from the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19];
}

/** The owner this process writes into the names of its work directories. */
export function currentOwner(): WorkDirOwner {
  return { pid: process.pid, pidNamespace: currentPidNamespace(), startTime: processStartTime(process.pid) ?? '' };
}

/** `<kind>-<pid>-<pid-namespace>-<start-time>-<random>` (unknown parts as `x`). */
export function workDirName(kind: string, owner: WorkDirOwner = currentOwner()): string {
  return `${kind}-${owner.pid}-${owner.pidNamespace || 'x'}-${owner.startTime || 'x'}-${randomBytes(6).toString('hex')}`;
}

const NAME = /^(?:build|run)-(\d+)-(\d+|x)-(\d+|x)-[0-9a-f]+$/;
/** Names of earlier versions: `<kind>-<pid>-<random>` (no namespace, no start time). */
const LEGACY_NAME = /^(?:build|run)-\d+-[0-9a-f]{12}$/;

/** The owner a work directory's name records, or undefined for a name that is not a work directory's. */
export function ownerOf(name: string): WorkDirOwner | undefined {
  const match = NAME.exec(name);
  if (!match) return undefined;
  return { pid: Number(match[1]), pidNamespace: match[2] === 'x' ? '' : match[2]!, startTime: match[3] === 'x' ? '' : match[3]! };
}

/** Whether a process with `pid` runs in this pid namespace (one we may not signal counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the owner is known to be gone: it ran in this pid namespace and no process with its
 * pid runs now, or the process with its pid started at another time (the pid was reused).
 */
export function ownerGone(owner: WorkDirOwner, here: WorkDirOwner = currentOwner(), proc = '/proc'): boolean {
  if (here.pidNamespace === '' || owner.pidNamespace !== here.pidNamespace) return false;
  if (owner.pid === here.pid && owner.startTime === here.startTime) return false;
  const started = processStartTime(owner.pid, proc);
  if (started !== undefined) return owner.startTime !== '' && started !== owner.startTime;
  return !processAlive(owner.pid);
}

export interface PruneOptions {
  now?: number;
  /** Default: this process. */
  here?: WorkDirOwner;
  /** Default `/proc` (tests point it elsewhere only to simulate other machines). */
  proc?: string;
  /** Told about each directory that could not be removed; pruning goes on. */
  onError?: (dir: string, error: unknown) => void;
}

/**
 * Remove the work directories of runs that are gone (see the module doc). Returns the
 * directories removed. A missing work root is nothing to prune.
 */
export async function pruneWorkDirs(workRoot: string, options: PruneOptions = {}): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(workRoot);
  } catch {
    return [];
  }
  const here = options.here ?? currentOwner();
  const now = options.now ?? Date.now();
  const removed: string[] = [];
  for (const name of names) {
    const owner = ownerOf(name);
    if (!owner && !LEGACY_NAME.test(name)) continue; // not ours
    const dir = join(workRoot, name);
    let stale = owner !== undefined && ownerGone(owner, here, options.proc);
    if (!stale && (owner === undefined || owner.pidNamespace !== here.pidNamespace || here.pidNamespace === '')) {
      stale = (await ageMs(dir, now)) > FOREIGN_WORK_DIR_MAX_AGE_MS;
    }
    if (!stale) continue;
    try {
      await rm(dir, { recursive: true, force: true, maxRetries: 2 });
      removed.push(dir);
    } catch (error) {
      options.onError?.(dir, error);
    }
  }
  return removed;
}

async function ageMs(path: string, now: number): Promise<number> {
  try {
    return now - (await lstat(path)).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Create this run's work directory under `workRoot` (made when missing). A concurrent
 * extender may remove an empty work root in between (pack runs build and run at once), so
 * creation is retried.
 */
export async function createWorkDir(workRoot: string, kind: string): Promise<string> {
  const dir = join(workRoot, workDirName(kind));
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(dir, { recursive: true });
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 3) continue;
      throw err;
    }
  }
}
