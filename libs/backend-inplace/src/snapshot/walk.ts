import { createHash } from 'node:crypto';
import { closeSync, constants, type BigIntStats, lstatSync, openSync, readdirSync, readlinkSync, readSync } from 'node:fs';
import { resolve } from 'node:path';
import { readXattrs } from '../xattr.ts';
import { DEFAULT_IGNORE_PATHS, mountPointsUnder, toLayerPath } from './ignore.ts';
import type { FileMeta, FileType, Snapshot } from './types.ts';

export interface SnapshotOptions {
  /** Image paths never recorded (with everything below them). Added to DEFAULT_IGNORE_PATHS. */
  ignorePaths?: readonly string[];
  /** Also ignore every mount point below the root (default true). */
  ignoreMountPoints?: boolean;
  /**
   * Entries whose ctime is within this many nanoseconds before the walk began
   * (or after it) are "racy": their content is hashed now so a later change that
   * lands in the same timestamp tick is still seen. Default: 50 ms when the
   * root's timestamps have sub-second parts (the kernel's coarse clock ticks
   * every 1–10 ms), 2 s when they do not (filesystems with whole-second times).
   */
  racyWindowNs?: bigint;
  /**
   * Leave racy files unhashed (listed in `Snapshot.unhashed`) for the layer writer to hash
   * from its own read of them; `settleHashes` hashes the rest before the root changes again.
   * Default false: hashed during the walk.
   */
  deferHashes?: boolean;
  signal?: AbortSignal;
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

/** For filesystems that store whole seconds (ext4 with 128-byte inodes, FAT's 2 s). */
const COARSE_RACY_WINDOW_NS = 2_000_000_000n;
/** Several ticks of the kernel's coarse clock, which stamps ctime (HZ=100 → 10 ms). */
const FINE_RACY_WINDOW_NS = 50_000_000n;
const SECOND_NS = 1_000_000_000n;

function fileType(mode: number): FileType | undefined {
  switch (mode & constants.S_IFMT) {
    case constants.S_IFREG:
      return 'file';
    case constants.S_IFDIR:
      return 'directory';
    case constants.S_IFLNK:
      return 'symlink';
    case constants.S_IFIFO:
      return 'fifo';
    case constants.S_IFCHR:
      return 'char-device';
    case constants.S_IFBLK:
      return 'block-device';
    case constants.S_IFSOCK:
      return 'socket';
    default:
      return undefined;
  }
}

/** The ignore set for `root`: layer paths (no leading `/`). */
export function ignoreSet(root: string, options: SnapshotOptions = {}): Set<string> {
  const paths = [...DEFAULT_IGNORE_PATHS, ...(options.ignorePaths ?? [])];
  if (options.ignoreMountPoints !== false) paths.push(...mountPointsUnder(root));
  const set = new Set<string>();
  for (const p of paths) {
    const layer = toLayerPath(p);
    if (layer !== '') set.add(layer);
  }
  return set;
}

/** sha256 of a file's bytes (hex), read with blocking reads into one buffer. */
export function hashFile(path: string, buffer: Buffer = Buffer.allocUnsafe(1 << 20)): string {
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, null);
      if (n === 0) break;
      hash.update(buffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** The metadata a snapshot keeps, from one `lstat` (bigint, for nanosecond times). */
export function metaFromStat(st: BigIntStats, type: FileType): FileMeta {
  const mode = Number(st.mode);
  return {
    type,
    mode: mode & 0o7777,
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    ino: st.ino,
    birthNs: st.birthtimeNs,
    dev: st.dev,
    nlink: Number(st.nlink),
    rdev: Number(st.rdev),
  };
}

/**
 * Walks `root` and records the metadata of every path (lstat only; symlinks
 * are never followed, nothing is read except symlink targets and the content of
 * racy files). Blocking calls on purpose: a walk of ~10k paths is a few tens of
 * milliseconds and the thread pool would only add overhead. The signal is
 * checked between directories.
 */
export function takeSnapshot(root: string, options: SnapshotOptions = {}): Snapshot {
  const absRoot = resolve(root);
  const ignored = ignoreSet(absRoot, options);
  const startedNs = BigInt(Date.now()) * 1_000_000n;
  // Candidates are collected with the widest window and hashed after the walk,
  // once the timestamps seen tell which window applies.
  const candidatesFrom = startedNs - (options.racyWindowNs ?? COARSE_RACY_WINDOW_NS);
  const candidates: [string, FileMeta][] = [];
  let subSecondTimes = false;
  const files = new Map<string, FileMeta>();
  const buffer = Buffer.allocUnsafe(1 << 20);
  const prefix = absRoot === '/' ? '/' : `${absRoot}/`;

  const visit = (dirAbs: string, dirRel: string): void => {
    options.signal?.throwIfAborted();
    let names: string[];
    try {
      names = readdirSync(dirAbs);
    } catch (cause) {
      throw new SnapshotError(`snapshotting ${absRoot}: reading directory /${dirRel}: ${(cause as Error).message}`, { cause });
    }
    names.sort();
    for (const name of names) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      if (ignored.has(rel)) continue;
      const abs = prefix + rel;
      let st: BigIntStats;
      try {
        st = lstatSync(abs, { bigint: true });
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed while walking
        throw new SnapshotError(`snapshotting ${absRoot}: lstat /${rel}: ${(cause as Error).message}`, { cause });
      }
      const type = fileType(Number(st.mode));
      if (type === undefined) continue;
      const meta = metaFromStat(st, type);
      if (type === 'symlink') meta.linkTarget = readlinkSync(abs);
      if (!subSecondTimes && st.ctimeNs % SECOND_NS !== 0n) subSecondTimes = true;
      if (st.ctimeNs >= candidatesFrom) candidates.push([abs, meta]);
      files.set(rel, meta);
      if (type === 'directory') visit(abs, rel);
    }
  };
  const rootStat = lstatSync(absRoot, { bigint: true });
  if (!rootStat.isDirectory()) throw new SnapshotError(`snapshotting ${absRoot}: not a directory`);
  visit(absRoot, '');
  const racyFrom = startedNs - (options.racyWindowNs ?? (subSecondTimes ? FINE_RACY_WINDOW_NS : COARSE_RACY_WINDOW_NS));
  const unhashed: string[] = [];
  for (const [abs, meta] of candidates) {
    if (meta.ctimeNs < racyFrom) continue;
    options.signal?.throwIfAborted();
    meta.racy = true;
    try {
      if (meta.type === 'file') {
        if (options.deferHashes) unhashed.push(abs.slice(prefix.length));
        else meta.hash = hashFile(abs, buffer);
      }
      const xattrs = readXattrs(abs);
      if (xattrs) meta.xattrs = xattrs;
    } catch (cause) {
      // removed since it was seen: the next walk will not find it either
      if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw new SnapshotError(`snapshotting ${absRoot}: reading ${abs}: ${(cause as Error).message}`, { cause });
    }
  }
  return { root: absRoot, files, startedNs, ...(unhashed.length > 0 ? { unhashed } : {}) };
}

/**
 * Gives every racy file of a snapshot taken with `deferHashes` its content hash: from
 * `known` (layer path → sha256 hex, what the layer writer read), from a diff that already
 * hashed it, or by reading it now. Call it before the root changes again.
 */
export function settleHashes(snapshot: Snapshot, known?: ReadonlyMap<string, string>): void {
  const pending = snapshot.unhashed;
  if (!pending) return;
  const prefix = snapshot.root === '/' ? '/' : `${snapshot.root}/`;
  const left: string[] = [];
  let buffer: Buffer | undefined;
  for (const path of pending) {
    const meta = snapshot.files.get(path);
    if (!meta || meta.hash !== undefined) continue;
    const hash = known?.get(path);
    if (hash !== undefined) {
      meta.hash = hash;
      continue;
    }
    if (!known) {
      try {
        meta.hash = hashFile(prefix + path, (buffer ??= Buffer.allocUnsafe(1 << 20)));
      } catch (cause) {
        // gone: the next walk will not find it either (and an unhashed racy entry counts as changed)
        if ((cause as NodeJS.ErrnoException).code !== 'ENOENT') throw new SnapshotError(`snapshotting ${snapshot.root}: reading ${prefix + path}: ${(cause as Error).message}`, { cause });
      }
      continue;
    }
    left.push(path);
  }
  if (left.length > 0) snapshot.unhashed = left;
  else delete snapshot.unhashed;
}
