import { NORMALIZED_LAYER_TIME } from '../model.ts';

export type LayerEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'fifo' | 'char-device' | 'block-device';

/**
 * One thing to put into a layer. Paths are layer paths: relative to the root of
 * the image filesystem, '/'-separated, no leading '/', no trailing '/', no '.',
 * '..' or empty components (`usr/bin/env`).
 */
export interface LayerEntry {
  path: string;
  type: LayerEntryType;
  /** Permission bits including setuid/setgid/sticky (`0o7777` part). */
  mode: number;
  uid: number;
  gid: number;
  /** Regular files: the byte count. Must match what `source` or `content` holds. */
  size?: number;
  /** Regular files: the file on disk to copy the bytes from. */
  source?: string;
  /** Regular files: the bytes, instead of `source`. */
  content?: Uint8Array;
  /** Symlinks: the target as stored. Hardlinks: the layer path of the earlier entry. */
  linkTarget?: string;
  devMajor?: number;
  devMinor?: number;
  /** Extended attributes, e.g. `security.capability`. */
  xattrs?: Record<string, Uint8Array>;
  /**
   * Identity of a multiply-linked regular file (`<dev>:<ino>` from a walk).
   * After sorting, the first entry with a key is written as a file and the
   * later ones as hardlinks to it.
   */
  inode?: string;
}

/** Prefix of a whiteout file (image-spec layer.md). */
export const WHITEOUT_PREFIX = '.wh.';
/** Name of the opaque-directory marker. */
export const OPAQUE_WHITEOUT = '.wh..wh..opq';

/** An entry that deletes `path` from the layers below. */
export function whiteoutEntry(path: string): LayerEntry {
  const slash = path.lastIndexOf('/');
  const dir = slash === -1 ? '' : path.slice(0, slash + 1);
  return { path: `${dir}${WHITEOUT_PREFIX}${path.slice(slash + 1)}`, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 };
}

/** An entry that hides everything the layers below have inside directory `dir`. */
export function opaqueEntry(dir: string): LayerEntry {
  return { path: dir ? `${dir}/${OPAQUE_WHITEOUT}` : OPAQUE_WHITEOUT, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 };
}

export class LayerError extends Error {
  override name = 'LayerError';
}

/** A layer path that is not allowed (escape attempts, malformed names). */
export class LayerPathError extends LayerError {
  override name = 'LayerPathError';
}

/** Throws LayerPathError unless `path` is a clean relative layer path. */
export function checkLayerPath(path: string): void {
  if (path === '' || path.startsWith('/') || path.endsWith('/') || path.includes('\0')) {
    throw new LayerPathError(`invalid layer path ${JSON.stringify(path)}: must be relative, non-empty, without leading or trailing '/'`);
  }
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..') {
      throw new LayerPathError(`invalid layer path ${JSON.stringify(path)}: empty, '.' or '..' component`);
    }
  }
}

/**
 * The order layers are written in: a depth-first walk with the names of each
 * directory sorted by their UTF-8 bytes (what `tar --sort=name` and Go's
 * sort.Strings give), except that within a directory the opaque marker comes
 * first, then whiteouts, as image-spec asks ("whiteout files appear before
 * sibling directory entries"). Parents always precede their children.
 */
export function compareLayerPaths(a: string, b: string): number {
  return compareSplit(a.split('/'), b.split('/'));
}

/** Sort entries into layer order (see compareLayerPaths), splitting each path once. */
export function sortLayerEntries<T extends { path: string }>(entries: T[]): T[] {
  const keyed = entries.map((entry) => ({ entry, parts: entry.path.split('/') }));
  keyed.sort((x, y) => compareSplit(x.parts, y.parts));
  return keyed.map((k) => k.entry);
}

function compareSplit(pa: string[], pb: string[]): number {
  const n = Math.min(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i]!;
    const y = pb[i]!;
    if (x === y) continue;
    const rx = rank(x);
    const ry = rank(y);
    if (rx !== ry) return rx - ry;
    return compareUtf8(x, y);
  }
  return pa.length - pb.length;
}

/** Order of the UTF-8 encodings, which is code point order (UTF-16 order differs only around surrogates). */
function compareUtf8(x: string, y: string): number {
  if (/[\ud800-\udfff]/.test(x) || /[\ud800-\udfff]/.test(y)) return Buffer.compare(Buffer.from(x), Buffer.from(y));
  return x < y ? -1 : 1;
}

function rank(name: string): number {
  if (name === OPAQUE_WHITEOUT) return 0;
  if (name.startsWith(WHITEOUT_PREFIX)) return 1;
  return 2;
}

/**
 * The file time layers get: `SOURCE_DATE_EPOCH` (seconds) when set, else
 * 1980-01-01T00:00:01Z as the lifecycle writes.
 */
export function defaultLayerTime(env: Record<string, string | undefined> = process.env): Date {
  const raw = env['SOURCE_DATE_EPOCH'];
  if (raw !== undefined && raw.trim() !== '') {
    const seconds = Number(raw.trim());
    if (!Number.isSafeInteger(seconds) || seconds < 0) {
      throw new LayerError(`SOURCE_DATE_EPOCH=${JSON.stringify(raw)} is not a non-negative integer number of seconds`);
    }
    return new Date(seconds * 1000);
  }
  return NORMALIZED_LAYER_TIME;
}
