import { lstat, readdir, readlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import { LayerError, type LayerEntry, sortLayerEntries } from './entry.ts';
import { defaultXattrFilter, readXattrs, requireXattrAccess, type XattrAccess } from './xattr.ts';

export interface WalkOptions {
  /** Read extended attributes (default true; fails when the platform has no xattr module). */
  xattrs?: boolean;
  /** Which attribute names to keep (default: all but `security.selinux` and `system.*`). */
  xattrFilter?: (name: string) => boolean;
  /** Leave out a path (and, for a directory, everything below it). Paths are layer paths. */
  exclude?: (path: string, stats: Stats) => boolean;
}

/**
 * Every file, directory, symlink, fifo and device under `root` as layer
 * entries, in layer order (see compareLayerPaths). The root itself is not an
 * entry. Sockets are left out (tar cannot hold them). Multiply-linked regular
 * files carry an `inode` key so the writer turns the later ones into hardlinks.
 */
export async function walkDirectory(root: string, options: WalkOptions = {}): Promise<LayerEntry[]> {
  const access = options.xattrs === false ? undefined : requireXattrAccess(`walking ${root}`);
  const filter = options.xattrFilter ?? defaultXattrFilter;
  const entries: LayerEntry[] = [];
  await walkInto(root, '', entries, { access, filter, exclude: options.exclude });
  return sortLayerEntries(entries);
}

interface WalkContext {
  access: XattrAccess | undefined;
  filter: (name: string) => boolean;
  exclude: WalkOptions['exclude'];
}

async function walkInto(dir: string, prefix: string, out: LayerEntry[], ctx: WalkContext): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (cause) {
    throw new LayerError(`walking ${dir}: ${(cause as Error).message}`, { cause });
  }
  const stats = await Promise.all(names.map((name) => lstat(join(dir, name))));
  const subdirs: Promise<void>[] = [];
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    const st = stats[i]!;
    const path = prefix + name;
    const abs = join(dir, name);
    if (ctx.exclude?.(path, st)) continue;
    const entry = await entryFromStats(abs, path, st, ctx.access, ctx.filter);
    if (!entry) continue;
    out.push(entry);
    if (entry.type === 'directory') subdirs.push(walkInto(abs, `${path}/`, out, ctx));
  }
  await Promise.all(subdirs);
}

/** The layer entry for one file system object; undefined for sockets. */
export async function entryFromStats(
  abs: string,
  path: string,
  st: Stats,
  access: XattrAccess | undefined,
  filter: (name: string) => boolean = defaultXattrFilter,
): Promise<LayerEntry | undefined> {
  const base = { path, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
  let entry: LayerEntry;
  if (st.isFile()) {
    entry = { ...base, type: 'file', size: st.size, source: abs };
    if (st.nlink > 1) entry.inode = `${st.dev}:${st.ino}`;
  } else if (st.isDirectory()) {
    entry = { ...base, type: 'directory' };
  } else if (st.isSymbolicLink()) {
    entry = { ...base, type: 'symlink', linkTarget: await readlink(abs) };
  } else if (st.isFIFO()) {
    entry = { ...base, type: 'fifo' };
  } else if (st.isCharacterDevice() || st.isBlockDevice()) {
    entry = { ...base, type: st.isCharacterDevice() ? 'char-device' : 'block-device', devMajor: major(st.rdev), devMinor: minor(st.rdev) };
  } else {
    return undefined; // socket
  }
  if (access) {
    const xattrs = readXattrs(access, abs, filter);
    if (xattrs) entry.xattrs = xattrs;
  }
  return entry;
}

/** glibc's gnu_dev_major / gnu_dev_minor. */
function major(rdev: number): number {
  const dev = BigInt(rdev);
  return Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn));
}

function minor(rdev: number): number {
  const dev = BigInt(rdev);
  return Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn));
}
