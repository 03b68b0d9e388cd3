import { execFile } from 'node:child_process';
import type { Stats } from 'node:fs';
import { chmodSync, closeSync, lchownSync, linkSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { digester, type Digest } from '../digest.ts';
import type { LayerCompression } from '../media-types.ts';
import { LayerError, LayerPathError, OPAQUE_WHITEOUT, WHITEOUT_PREFIX } from './entry.ts';
import { decompressLayer, type LayerSource, openLayerSource, readTar, type TarEntry } from './reader.ts';
import { requireXattrAccess, type XattrAccess } from './xattr.ts';

const run = promisify(execFile);

export interface ApplyLayerOptions {
  /**
   * How names starting with '/' (entry names, hardlink targets, and absolute
   * symlinks that a later entry would be written through) are treated:
   * 'reject' (default) refuses the layer; 'root' reads them relative to the
   * target, as a container runtime does (layers written by the lifecycle and
   * kaniko name entries `/some-dir/...`).
   */
  absolutePaths?: 'reject' | 'root';
  /** Restore uid/gid (default: when running as root). */
  ownership?: boolean;
  /** Restore extended attributes (default: when running as root). */
  xattrs?: boolean;
  /** Refuse the layer unless its uncompressed bytes have this digest. */
  expectedDiffId?: Digest;
  /**
   * 'apply' (default): `.wh.` entries are whiteouts, as in an image layer.
   * 'ordinary': they are files like any other, as Docker extracts a local
   * archive for ADD (the archive is no layer).
   */
  whiteouts?: 'apply' | 'ordinary';
}

export interface ApplyLayerResult {
  compression: LayerCompression;
  diffId: Digest;
  entryCount: number;
  /** Entries that could not be created here (device nodes when not root), with the reason. */
  skipped: { path: string; reason: string }[];
}

/**
 * Apply a layer (gzip, zstd or plain tar, detected from magic bytes) on top of
 * the directory `target`: entries are created or replaced, `.wh.<name>`
 * deletes `<name>` from what was there before, `.wh..wh..opq` empties a
 * directory of what was there before (with `whiteouts: 'ordinary'` both are
 * plain entries, for archives that are not layers).
 *
 * The layer is read twice: first every entry is checked against a model of the
 * target (paths, symlinks met on the way, hardlink targets, the diffID), and
 * only if all pass is the target touched. An entry that would land outside the
 * target — `..` escaping the root, a write through a symlink whose target
 * leaves the root, a hardlink to outside, and (unless absolutePaths is 'root')
 * absolute names and absolute symlinks on the way — makes the whole layer
 * fail with a LayerPathError and leaves the target unchanged. Symlinks met
 * inside the root are followed the way the image's own filesystem would
 * resolve them (`lib -> usr/lib`), never through the host's.
 */
export async function applyLayer(target: string, source: LayerSource, options: ApplyLayerOptions = {}): Promise<ApplyLayerResult> {
  const root = await lstat(target).catch((cause: Error) => {
    throw new LayerError(`applying layer to ${target}: ${cause.message}`, { cause });
  });
  if (!root.isDirectory()) throw new LayerError(`applying layer to ${target}: not a directory`);
  const isRoot = process.getuid?.() === 0;
  const settings: Settings = {
    absolute: options.absolutePaths ?? 'reject',
    ownership: options.ownership ?? isRoot,
    xattrs: (options.xattrs ?? isRoot) ? requireXattrAccess(`applying layer to ${target}`) : undefined,
    canMknod: isRoot,
    whiteouts: options.whiteouts ?? 'apply',
  };

  // Pass 1: check everything against a model of the target; nothing is written.
  const model = new ModelView(target);
  const check = await walkLayer(source, async (entry) => {
    await plan(entry, model, settings, undefined);
  });
  if (options.expectedDiffId && check.diffId !== options.expectedDiffId) {
    throw new LayerError(`applying layer to ${target}: its content has diffID ${check.diffId}, expected ${options.expectedDiffId}`);
  }

  // Pass 2: the same decisions against the real directory, now carried out.
  const real = new RealView(target);
  const apply = new Applier(target, settings);
  const done = await walkLayer(source, async (entry) => {
    try {
      await plan(entry, real, settings, apply);
    } catch (cause) {
      if (cause instanceof LayerError) throw cause;
      throw new LayerError(`applying layer to ${target}: entry ${JSON.stringify(entry.name)}: ${(cause as Error).message}`, { cause });
    }
  });
  if (done.diffId !== check.diffId) throw new LayerError(`applying layer to ${target}: the layer changed between reads`);
  await apply.finish();
  return { compression: done.compression, diffId: done.diffId, entryCount: done.count, skipped: apply.skipped };
}

interface Settings {
  absolute: 'reject' | 'root';
  ownership: boolean;
  xattrs: XattrAccess | undefined;
  canMknod: boolean;
  whiteouts: 'apply' | 'ordinary';
}

async function walkLayer(source: LayerSource, each: (entry: TarEntry) => Promise<void>): Promise<{ compression: LayerCompression; diffId: Digest; count: number }> {
  const { compression, tar } = await decompressLayer(openLayerSource(source));
  const hash = digester();
  async function* hashed(): AsyncGenerator<Buffer> {
    for await (const chunk of tar) {
      hash.hash.update(chunk);
      yield chunk;
    }
  }
  let count = 0;
  for await (const entry of readTar(hashed())) {
    count++;
    await each(entry);
  }
  return { compression, diffId: hash.digest(), count };
}

// ---------------------------------------------------------------------------
// Paths

type Node = { kind: 'dir' } | { kind: 'symlink'; target: string } | { kind: 'other' } | { kind: 'missing' };

/** What a resolver needs to know about the target's state. */
interface View {
  lookup(rel: string): Promise<Node>;
}

/** Split and clean a name from the layer; throws on escapes. Empty array: the root itself. */
function layerComponents(name: string, what: string, entryName: string, settings: Settings): string[] {
  if (name.includes('\0')) throw new LayerPathError(`layer entry ${JSON.stringify(entryName)}: ${what} contains a NUL byte`);
  if (name.startsWith('/') && settings.absolute === 'reject') {
    throw new LayerPathError(`layer entry ${JSON.stringify(entryName)}: ${what} ${JSON.stringify(name)} is absolute (refused; absolutePaths: 'root' reads it relative to the target)`);
  }
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new LayerPathError(`layer entry ${JSON.stringify(entryName)}: ${what} ${JSON.stringify(name)} leads outside the target`);
      out.pop();
    } else out.push(part);
  }
  return out;
}

const MAX_SYMLINKS = 40;

/**
 * Resolve parent components to a path without symlinks, relative to the root,
 * following symlinks the way the image would see them. Missing components are
 * fine (they will be created as directories).
 */
async function resolveDir(parts: string[], view: View, entryName: string, settings: Settings): Promise<string[]> {
  const resolved: string[] = [];
  const queue = [...parts];
  let hops = 0;
  while (queue.length > 0) {
    const part = queue.shift()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      // Only reachable through a symlink's target (names were cleaned).
      if (resolved.length === 0) throw escape(entryName);
      resolved.pop();
      continue;
    }
    const rel = [...resolved, part].join('/');
    const node = await view.lookup(rel);
    if (node.kind === 'dir' || node.kind === 'missing') {
      resolved.push(part);
    } else if (node.kind === 'symlink') {
      if (++hops > MAX_SYMLINKS) throw new LayerPathError(`layer entry ${JSON.stringify(entryName)}: too many levels of symbolic links at ${rel}`);
      if (node.target.startsWith('/')) {
        if (settings.absolute === 'reject') {
          throw new LayerPathError(
            `layer entry ${JSON.stringify(entryName)}: would be written through symlink ${rel} -> ${node.target}, which points outside the target (refused; absolutePaths: 'root' reads it relative to the target)`,
          );
        }
        resolved.length = 0;
      } else {
        // A relative target that climbs above the root is an escape.
        let depth = resolved.length;
        for (const p of node.target.split('/')) {
          if (p === '..') depth--;
          else if (p !== '' && p !== '.') depth++;
          if (depth < 0) {
            throw new LayerPathError(`layer entry ${JSON.stringify(entryName)}: would be written through symlink ${rel} -> ${node.target}, which points outside the target`);
          }
        }
      }
      queue.unshift(...node.target.split('/'));
    } else {
      throw new LayerError(`layer entry ${JSON.stringify(entryName)}: ${rel} is not a directory`);
    }
  }
  return resolved;

  function escape(name: string): LayerPathError {
    return new LayerPathError(`layer entry ${JSON.stringify(name)}: leads outside the target`);
  }
}

/** Real state of the target. */
class RealView implements View {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }
  async lookup(rel: string): Promise<Node> {
    return nodeOf(join(this.root, rel));
  }
}

async function nodeOf(abs: string): Promise<Node> {
  let st: Stats;
  try {
    st = lstatSync(abs);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'missing' };
    throw cause;
  }
  if (st.isDirectory()) return { kind: 'dir' };
  if (st.isSymbolicLink()) return { kind: 'symlink', target: readlinkSync(abs) };
  return { kind: 'other' };
}

/** The target as it will be after the entries seen so far: changes recorded over the real state. */
class ModelView implements View {
  private readonly real: RealView;
  /** Changed paths; `fresh` directories hide whatever the real directory holds. */
  private readonly changes = new Map<string, Node & { fresh?: boolean }>();
  constructor(root: string) {
    this.real = new RealView(root);
  }
  async lookup(rel: string): Promise<Node> {
    const own = this.changes.get(rel);
    if (own) return own;
    // Below a replaced, removed or opaque path nothing real is visible.
    for (let i = rel.lastIndexOf('/'); i > 0; i = rel.lastIndexOf('/', i - 1)) {
      const up = this.changes.get(rel.slice(0, i));
      if (up) {
        if (up.kind !== 'dir' || up.fresh) return { kind: 'missing' };
        break;
      }
    }
    // The real directory does not change during the check pass: ask it once per path.
    let node = this.seen.get(rel);
    if (!node) {
      node = await this.real.lookup(rel);
      this.seen.set(rel, node);
    }
    return node;
  }
  private readonly seen = new Map<string, Node>();
  set(rel: string, node: Node, fresh = false): void {
    this.changes.set(rel, fresh ? { ...node, fresh } : node);
  }
  /** Paths this layer created (and their parents): whiteouts do not remove them. */
  readonly created = new Set<string>();

}

// ---------------------------------------------------------------------------
// Entries

/**
 * Decide what one entry does (resolving and checking its paths against
 * `view`), then either record it in the model (check pass) or carry it out.
 */
async function plan(entry: TarEntry, view: View, settings: Settings, apply: Applier | undefined): Promise<void> {
  const parts = layerComponents(entry.name, 'name', entry.name, settings);
  if (parts.length === 0) return; // the root itself: its metadata is the target's own
  const base = parts[parts.length - 1]!;
  const dir = await resolveDir(parts.slice(0, -1), view, entry.name, settings);
  const dirRel = dir.join('/');
  const rel = dirRel ? `${dirRel}/${base}` : base;
  const model = view instanceof ModelView ? view : undefined;

  if (base === OPAQUE_WHITEOUT && settings.whiteouts === 'apply') {
    if (model) model.set(dirRel, { kind: 'dir' }, true);
    else await apply!.opaque(dirRel);
    return;
  }
  if (base.startsWith(WHITEOUT_PREFIX) && settings.whiteouts === 'apply') {
    const victim = base.slice(WHITEOUT_PREFIX.length);
    if (victim === '' || victim === '.' || victim === '..') throw new LayerPathError(`layer entry ${JSON.stringify(entry.name)}: invalid whiteout`);
    const victimRel = dirRel ? `${dirRel}/${victim}` : victim;
    if (model) {
      if (!model.created.has(victimRel)) model.set(victimRel, { kind: 'missing' }, true);
    } else await apply!.whiteout(victimRel);
    return;
  }

  let linkRel: string | undefined;
  if (entry.type === 'hardlink') {
    const lparts = layerComponents(entry.linkTarget, 'hardlink target', entry.name, settings);
    if (lparts.length === 0) throw new LayerPathError(`layer entry ${JSON.stringify(entry.name)}: hardlink to the root`);
    const ldir = await resolveDir(lparts.slice(0, -1), view, entry.name, settings);
    linkRel = [...ldir, lparts[lparts.length - 1]!].join('/');
    const node = await view.lookup(linkRel);
    if (node.kind === 'missing') throw new LayerError(`layer entry ${JSON.stringify(entry.name)}: hardlink target ${entry.linkTarget} does not exist`);
    if (node.kind === 'dir') throw new LayerError(`layer entry ${JSON.stringify(entry.name)}: hardlink target ${entry.linkTarget} is a directory`);
  }
  if (entry.type === 'other') throw new LayerError(`layer entry ${JSON.stringify(entry.name)}: unsupported tar type ${JSON.stringify(String.fromCharCode(entry.typeflag))}`);

  if (model) {
    // Parents that do not exist yet become fresh directories.
    for (let i = 1; i <= dir.length; i++) {
      const up = dir.slice(0, i).join('/');
      if ((await model.lookup(up)).kind === 'missing') model.set(up, { kind: 'dir' }, true);
    }
    const existing = await model.lookup(rel);
    if (entry.type === 'directory') model.set(rel, { kind: 'dir' }, existing.kind !== 'dir');
    else if (entry.type === 'symlink') model.set(rel, { kind: 'symlink', target: entry.linkTarget }, true);
    else model.set(rel, { kind: 'other' }, true);
    addWithParents(model.created, rel);
    return;
  }
  await apply!.entry(entry, dirRel, rel, linkRel);
}

function addWithParents(set: Set<string>, rel: string): void {
  for (let at = rel; at !== '' && !set.has(at); at = at.slice(0, Math.max(0, at.lastIndexOf('/')))) set.add(at);
}

/**
 * Carries entries out on the real target. File system calls are synchronous:
 * each is a few microseconds on a local disk, against tens for a thread-pool
 * round trip, and decompression keeps running on the pool meanwhile.
 */
class Applier {
  readonly skipped: { path: string; reason: string }[] = [];
  private readonly root: string;
  private readonly settings: Settings;
  /** Paths this layer created: whiteouts and opaque markers never remove them. */
  private readonly created = new Set<string>();
  /** Directory metadata is set last, so writing children does not undo it. */
  private readonly dirs: { abs: string; entry: TarEntry }[] = [];

  constructor(root: string, settings: Settings) {
    this.root = root;
    this.settings = settings;
  }

  private abs(rel: string): string {
    return join(this.root, rel);
  }

  async opaque(dirRel: string): Promise<void> {
    const abs = this.abs(dirRel);
    let names: string[];
    try {
      names = readdirSync(abs);
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw cause;
    }
    for (const name of names) {
      const rel = dirRel ? `${dirRel}/${name}` : name;
      if (!this.created.has(rel)) rmSync(this.abs(rel), { recursive: true, force: true });
    }
  }

  async whiteout(rel: string): Promise<void> {
    if (this.created.has(rel)) return;
    rmSync(this.abs(rel), { recursive: true, force: true });
  }

  async entry(entry: TarEntry, dirRel: string, rel: string, linkRel: string | undefined): Promise<void> {
    const abs = this.abs(rel);
    if (dirRel) mkdirSync(this.abs(dirRel), { recursive: true });
    const existing = await nodeOf(abs);
    addWithParents(this.created, rel);
    if (entry.type === 'directory') {
      if (existing.kind !== 'dir') {
        if (existing.kind !== 'missing') unlinkSync(abs);
        mkdirSync(abs, { mode: 0o700 });
      }
      this.dirs.push({ abs, entry });
      return;
    }
    if (existing.kind === 'dir') rmSync(abs, { recursive: true, force: true });
    else if (existing.kind !== 'missing') unlinkSync(abs);

    switch (entry.type) {
      case 'file': {
        const fd = openSync(abs, 'wx', 0o600);
        try {
          for await (const chunk of entry.body()) {
            for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at, chunk.length - at);
          }
        } finally {
          closeSync(fd);
        }
        break;
      }
      case 'symlink':
        symlinkSync(entry.linkTarget, abs);
        break;
      case 'hardlink':
        linkSync(this.abs(linkRel!), abs);
        return; // shares the target's inode and metadata
      case 'fifo':
        await run('mkfifo', ['-m', '600', abs]);
        break;
      case 'char-device':
      case 'block-device':
        if (!this.settings.canMknod) {
          this.skipped.push({ path: rel, reason: 'device nodes need root' });
          return;
        }
        await run('mknod', ['-m', '600', abs, entry.type === 'char-device' ? 'c' : 'b', String(entry.devMajor), String(entry.devMinor)]);
        break;
    }
    await this.metadata(abs, entry);
  }

  private async metadata(abs: string, entry: TarEntry): Promise<void> {
    const isLink = entry.type === 'symlink';
    // Owner first: chown clears setuid/setgid, so the mode comes after it.
    if (this.settings.ownership) lchownSync(abs, entry.uid, entry.gid);
    if (!isLink) chmodSync(abs, entry.mode);
    if (this.settings.xattrs && entry.xattrs) {
      for (const [name, value] of Object.entries(entry.xattrs)) {
        // The kernel allows user.* attributes only on regular files and directories.
        if (isLink && name.startsWith('user.')) continue;
        try {
          this.settings.xattrs.set(abs, name, value);
        } catch (cause) {
          throw new LayerError(`applying layer: setting ${name} on ${entry.name}: ${(cause as Error).message}`, { cause });
        }
      }
    }
    const time = new Date(entry.mtime * 1000);
    lutimesSync(abs, time, time);
  }

  /** Directory metadata, deepest first. */
  async finish(): Promise<void> {
    for (const { abs, entry } of this.dirs.reverse()) await this.metadata(abs, entry);
  }
}
