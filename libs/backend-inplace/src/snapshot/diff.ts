import { readXattrs, sameXattrs } from '../xattr.ts';
import { hashFile } from './walk.ts';
import type { ChangeEntry, ChangeKind, ChangeSet, FileMeta, Snapshot } from './types.ts';

function parentOf(path: string): string {
  const i = path.lastIndexOf('/');
  return i === -1 ? '' : path.slice(0, i);
}

function devMajor(rdev: number): number {
  return ((rdev >>> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff);
}

function devMinor(rdev: number): number {
  return (rdev & 0xff) | ((rdev >>> 12) & ~0xff & 0xfffff);
}

/**
 * Whether `cur` differs from `prev` (same path, same type). Metadata decides
 * when it can: a different owner, mode, size, link target, inode, mtime or
 * ctime means a change. ctime moves on every write, chmod, chown, xattr or link
 * change and user space cannot set it, so equal times mean nothing happened —
 * except for entries that were "racy" when `prev` was taken (changed so close to
 * that walk that a later change may share the timestamp tick): for those the
 * bytes and extended attributes, hashed at that time, decide instead. The hash
 * read then is kept on `cur` when it is racy itself and has none yet.
 */
export function hasChanged(prev: FileMeta, cur: FileMeta, abs: string): boolean {
  if (prev.type !== cur.type || prev.mode !== cur.mode || prev.uid !== cur.uid || prev.gid !== cur.gid) return true;
  if (prev.linkTarget !== cur.linkTarget || prev.rdev !== cur.rdev) return true;
  if (cur.type === 'directory') {
    // A directory's ctime moves when entries come and go as well as when its own
    // attributes change; either way re-stating it in the layer costs one header.
    if (!sameObject(prev, cur) || prev.ctimeNs !== cur.ctimeNs) return true;
    return prev.racy === true && !sameXattrs(prev.xattrs, readXattrs(abs));
  }
  if (prev.size !== cur.size) return true;
  if (prev.racy) {
    // Times cannot be trusted; everything else can. A new link to the file
    // changes nlink (and must put every name of the inode into the layer).
    if (!sameObject(prev, cur) || prev.nlink !== cur.nlink) return true;
    if (!sameXattrs(prev.xattrs, readXattrs(abs))) return true;
    if (cur.type !== 'file') return false;
    // A racy entry whose hash was never taken cannot be compared: count it as changed.
    if (prev.hash === undefined) return true;
    const hash = hashFile(abs);
    // The bytes read are the current entry's too: a racy one that waits for its hash has it now.
    if (cur.racy && cur.hash === undefined) cur.hash = hash;
    return prev.hash !== hash;
  }
  return !sameObject(prev, cur) || prev.mtimeNs !== cur.mtimeNs || prev.ctimeNs !== cur.ctimeNs;
}

/** Same filesystem object: inode numbers get re-used at once, so the creation time must match too. */
function sameObject(a: FileMeta, b: FileMeta): boolean {
  return a.ino === b.ino && a.dev === b.dev && a.birthNs === b.birthNs;
}

export interface DiffOptions {
  /** Read extended attributes of the entries put into the change set (default true). */
  xattrs?: boolean;
}

/**
 * The change set that turns `prev` into `next` (both walks of the same root):
 * additions, modifications, whiteouts for deleted paths (only the topmost of a
 * deleted tree), opaque markers for directories that were replaced (new inode),
 * and the parent directories of every entry so the layer recreates them with
 * the right owner and mode. Multiply-linked files carry an `inode` key so the
 * layer writer stores the later ones as hardlinks.
 */
export function diffSnapshots(prev: Snapshot, next: Snapshot, options: DiffOptions = {}): ChangeSet {
  if (prev.root !== next.root) throw new Error(`diffing snapshots of ${prev.root} and ${next.root}: different roots`);
  const root = next.root;
  const prefix = root === '/' ? '/' : `${root}/`;
  const withXattrs = options.xattrs !== false;
  const toEntry: EntryMaker = (path, meta, change) => entryFor(prefix, path, meta, change, withXattrs);
  const set: ChangeSet = { entries: [], added: [], modified: [], deleted: [], opaque: [] };
  const opaque = new Set<string>();
  const out = changedEntries(prev, next, prefix, set, opaque, toEntry);
  const markers = deletionMarkers(prev, next, set, opaque);
  addParents(out, markers, next, toEntry);
  set.entries = [...out.values(), ...markers];
  return set;
}

type EntryMaker = (path: string, meta: FileMeta, change: ChangeKind) => ChangeEntry | undefined;

/** The change entry for `path` (under `prefix` on disk), or undefined for what a layer cannot hold (sockets). */
function entryFor(prefix: string, path: string, meta: FileMeta, change: ChangeKind, withXattrs: boolean): ChangeEntry | undefined {
  if (meta.type === 'socket') return undefined;
  const abs = prefix + path;
  const e: ChangeEntry = { path, type: meta.type, mode: meta.mode, uid: meta.uid, gid: meta.gid, change };
  if (meta.type === 'file') {
    e.size = meta.size;
    e.source = abs;
    if (meta.nlink > 1) e.inode = `${meta.dev}:${meta.ino}`;
  } else if (meta.type === 'symlink') {
    e.linkTarget = meta.linkTarget ?? '';
  } else if (meta.type === 'char-device' || meta.type === 'block-device') {
    e.devMajor = devMajor(meta.rdev);
    e.devMinor = devMinor(meta.rdev);
  }
  if (withXattrs) {
    const x = readXattrs(abs);
    if (x) e.xattrs = x;
  }
  return e;
}

/**
 * A directory whose identity changed was replaced only if nothing it held is
 * still there: overlayfs reports a new birth time (and, without xino, a new
 * inode number) for a directory when it is copied up, and its children keep
 * theirs. When in doubt the directory is not opaque and removed children get
 * whiteouts, which gives the same result. The children index is built on first use.
 */
function survivorCheck(prev: Snapshot, next: Snapshot): (dir: string) => boolean {
  let children: Map<string, string[]> | undefined;
  return (dir) => {
    if (!children) {
      children = new Map();
      for (const p of prev.files.keys()) {
        const parent = parentOf(p);
        const list = children.get(parent);
        if (list) list.push(p);
        else children.set(parent, [p]);
      }
    }
    for (const child of children.get(dir) ?? []) {
      const before = prev.files.get(child)!;
      const now = next.files.get(child);
      if (now && sameObject(before, now)) return true;
    }
    return false;
  };
}

function underOpaque(path: string, opaque: ReadonlySet<string>): boolean {
  for (let p = parentOf(path); p !== ''; p = parentOf(p)) if (opaque.has(p)) return true;
  return false;
}

/** Added and modified paths of `next` (recorded in `set`, replaced directories in `set.opaque` and `opaque`), in walk order. */
function changedEntries(prev: Snapshot, next: Snapshot, prefix: string, set: ChangeSet, opaque: Set<string>, toEntry: EntryMaker): Map<string, ChangeEntry> {
  const out = new Map<string, ChangeEntry>();
  const anyChildSurvives = survivorCheck(prev, next);
  for (const [path, cur] of next.files) {
    const old = prev.files.get(path);
    let change: ChangeKind | undefined;
    if (!old || underOpaque(path, opaque)) change = 'added';
    else if (old.type === 'directory' && cur.type === 'directory' && !sameObject(old, cur) && !anyChildSurvives(path)) {
      opaque.add(path);
      set.opaque.push(path);
      change = 'modified';
    } else if (hasChanged(old, cur, prefix + path)) change = old.type === cur.type ? 'modified' : 'added';
    if (!change) continue;
    const e = toEntry(path, cur, change);
    if (!e) continue;
    out.set(path, e);
    (change === 'added' ? set.added : set.modified).push(path);
  }
  return out;
}

/** Whiteouts for the topmost deleted paths (recorded in `set.deleted`), then opaque markers for the replaced directories. */
function deletionMarkers(prev: Snapshot, next: Snapshot, set: ChangeSet, opaque: ReadonlySet<string>): ChangeEntry[] {
  const markers: ChangeEntry[] = [];
  for (const path of prev.files.keys()) {
    if (next.files.has(path)) continue;
    const parent = parentOf(path);
    if (parent !== '') {
      const p = next.files.get(parent);
      const wasDir = prev.files.get(parent)?.type === 'directory';
      if (p?.type !== 'directory' || !wasDir || opaque.has(parent) || underOpaque(parent, opaque)) continue;
    }
    set.deleted.push(path);
    const slash = path.lastIndexOf('/');
    markers.push(marker(`${path.slice(0, slash + 1)}.wh.${path.slice(slash + 1)}`, 'whiteout'));
  }
  for (const dir of set.opaque) markers.push(marker(`${dir}/.wh..wh..opq`, 'opaque'));
  return markers;
}

/** Parents of everything, from the new snapshot, so the layer carries their owner and mode. */
function addParents(out: Map<string, ChangeEntry>, markers: readonly ChangeEntry[], next: Snapshot, toEntry: EntryMaker): void {
  const needParents = [...out.keys(), ...markers.map((m) => m.path)];
  for (const path of needParents) {
    for (let p = parentOf(path); p !== '' && !out.has(p); p = parentOf(p)) {
      const meta = next.files.get(p);
      if (!meta) break;
      const e = toEntry(p, meta, 'parent');
      if (e) out.set(p, e);
    }
  }
}

function marker(path: string, change: 'whiteout' | 'opaque'): ChangeEntry {
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0, content: new Uint8Array(0), change };
}
