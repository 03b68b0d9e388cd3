import { chmodSync, closeSync, copyFileSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, rmSync, type Stats, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, join, posix } from 'node:path';
import { applyLayer } from '@cnb-extender/oci';
import { cleanImagePath, isWithin, resolveInRoot } from './paths.ts';

export class CopyError extends Error {
  override name = 'CopyError';
}

export interface CopyRequest {
  /** Root filesystem the files go into. */
  root: string;
  /** Build context directory; sources must resolve inside it. */
  contextDir: string;
  /** Expanded source words as written (`src/*.txt`, `dir/`, `.`). */
  sources: string[];
  /** Expanded destination (absolute, or relative to `cwd`). */
  dest: string;
  /** Current WORKDIR (image path). */
  cwd: string;
  /** Owner of everything written (default 0:0). */
  owner?: { uid: number; gid: number };
  /** `--chmod` as parsed octal bits. */
  mode?: number;
  /** ADD: local tar archives are extracted, URLs are fetched when `allowRemote`. */
  add?: boolean;
  allowRemote?: boolean;
  signal?: AbortSignal;
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;
const GLOB_RE = /[*?[]/;

/** Parses `--chmod` (octal only, as BuildKit without the labs syntax). */
export function parseChmod(value: string): number {
  if (!/^[0-7]{3,4}$/.test(value)) throw new CopyError(`invalid --chmod=${value}: only octal modes like 0755 are supported`);
  return parseInt(value, 8);
}

/** Go `filepath.Match` for one path component, as a RegExp. */
function segmentRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]!}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end === -1) throw new CopyError(`invalid pattern ${JSON.stringify(pattern)}: missing ']'`);
      let cls = pattern.slice(i + 1, end);
      if (cls.startsWith('^') || cls.startsWith('!')) cls = `^${cls.slice(1)}`;
      re += `[${cls.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Context-relative paths matching `pattern` (a clean relative path, may contain globs). */
function expandGlob(contextDir: string, pattern: string): string[] {
  let found = [''];
  for (const part of pattern.split('/')) {
    const next: string[] = [];
    for (const base of found) {
      if (!GLOB_RE.test(part)) {
        next.push(base === '' ? part : `${base}/${part}`);
        continue;
      }
      const re = segmentRegExp(part);
      let names: string[];
      try {
        names = readdirSync(join(contextDir, base));
      } catch {
        continue;
      }
      for (const n of names.sort()) if (re.test(n)) next.push(base === '' ? n : `${base}/${n}`);
    }
    found = next;
  }
  return found;
}

function describe(req: CopyRequest): string {
  return `${req.add ? 'ADD' : 'COPY'} ${req.sources.join(' ')} ${req.dest}`;
}

/** A context source: its relative name and the real path it resolves to (checked to be in the context). */
interface Source {
  rel: string;
  real: string;
  stat: Stats;
}

function resolveSources(req: CopyRequest, realContext: string): Source[] {
  const out: Source[] = [];
  for (const word of req.sources) {
    const rel = posix.normalize(word.replace(/^\/+/, '') || '.');
    if (rel === '..' || rel.startsWith('../')) {
      throw new CopyError(`${describe(req)}: source ${JSON.stringify(word)} is outside the build context`);
    }
    const names = GLOB_RE.test(rel) ? expandGlob(realContext, rel) : [rel];
    if (names.length === 0) throw new CopyError(`${describe(req)}: no source files were specified: ${JSON.stringify(word)} matches nothing in the build context`);
    for (const name of names) {
      const host = name === '.' ? realContext : join(realContext, name);
      let real: string;
      try {
        real = realpathSync(host);
      } catch (cause) {
        throw new CopyError(`${describe(req)}: source ${JSON.stringify(name)}: ${(cause as Error).message}`, { cause });
      }
      if (!isWithin(realContext, real)) {
        throw new CopyError(`${describe(req)}: source ${JSON.stringify(name)} resolves to ${real}, outside the build context`);
      }
      out.push({ rel: name, real, stat: statSync(real) });
    }
  }
  return out;
}

/** Creates the directories of image path `dir` that are missing (mode 0755, `owner`); returns the host path. */
function mkdirInRoot(root: string, dir: string, owner: { uid: number; gid: number }, touched: Set<string>): string {
  let image = '';
  for (const part of cleanImagePath(dir).split('/').filter((p) => p !== '')) {
    image = `${image}/${part}`;
    const host = resolveInRoot(root, image);
    let st: Stats | undefined;
    try {
      st = lstatSync(host);
    } catch {
      st = undefined;
    }
    if (!st) {
      mkdirSync(host, { mode: 0o755 });
      chmodSync(host, 0o755);
      lchownSync(host, owner.uid, owner.gid);
      touched.add(image);
    } else if (!st.isDirectory()) {
      throw new CopyError(`creating directory ${image}: a file of another type is in the way`);
    }
  }
  return resolveInRoot(root, dir);
}

function isArchive(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(512);
    const n = readSync(fd, head, 0, 512, 0);
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return true;
    if (n >= 4 && head.readUInt32BE(0) === 0x28b52ffd) return true;
    return n >= 262 && head.toString('latin1', 257, 262) === 'ustar';
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies COPY/ADD sources from the build context into the root filesystem,
 * with Docker's rules: a directory source copies its contents; several
 * sources or a destination ending in `/` (or an existing directory) mean
 * "into this directory"; missing directories are created; everything gets
 * `owner` (default root) and, with `--chmod`, that mode; mtimes are kept.
 * Sources that resolve outside the context (`..`, symlinks) are refused.
 * Returns the image paths written (top-level targets and created directories).
 */
export async function copyIntoRoot(req: CopyRequest): Promise<string[]> {
  let realContext: string;
  try {
    realContext = realpathSync(req.contextDir);
  } catch (cause) {
    throw new CopyError(`${describe(req)}: build context ${req.contextDir}: ${(cause as Error).message}`, { cause });
  }
  const owner = req.owner ?? { uid: 0, gid: 0 };
  const touched = new Set<string>();
  const remote = req.sources.filter((s) => URL_RE.test(s));
  if (remote.length > 0 && !req.add) throw new CopyError(`${describe(req)}: source can't be a URL for COPY (${remote[0]})`);
  if (remote.length > 0 && !req.allowRemote) {
    throw new CopyError(`${describe(req)}: remote source ${remote[0]} is not allowed (ADD of URLs needs network access, which this build does not permit)`);
  }
  const local = resolveSources({ ...req, sources: req.sources.filter((s) => !URL_RE.test(s)) }, realContext);
  const destImage = cleanImagePath(req.dest, req.cwd);
  const destHost = resolveInRoot(req.root, destImage);
  const destExistsDir = (() => {
    try {
      return statSync(destHost).isDirectory();
    } catch {
      return false;
    }
  })();
  const count = local.length + remote.length;
  const intoDir = req.dest.endsWith('/') || destExistsDir || (req.dest.endsWith('/.') || req.dest === '.');
  if (count > 1 && !intoDir) {
    throw new CopyError(`${describe(req)}: with more than one source the destination must be a directory and end with a /`);
  }

  for (const url of remote) {
    req.signal?.throwIfAborted();
    const name = basename(new URL(url).pathname) || 'index.html';
    const target = intoDir ? posix.join(destImage, name) : destImage;
    mkdirInRoot(req.root, posix.dirname(target), owner, touched);
    const response = await fetch(url, req.signal ? { signal: req.signal } : {});
    if (!response.ok) throw new CopyError(`${describe(req)}: fetching ${url}: HTTP ${response.status}`);
    const host = resolveInRoot(req.root, target, false);
    rmSync(host, { force: true });
    writeFileSync(host, Buffer.from(await response.arrayBuffer()), { mode: 0o600 });
    chmodSync(host, req.mode ?? 0o600);
    lchownSync(host, owner.uid, owner.gid);
    touched.add(target);
  }

  for (const src of local) {
    req.signal?.throwIfAborted();
    if (src.stat.isDirectory()) {
      const host = mkdirInRoot(req.root, destImage, owner, touched);
      copyTree(req, src.real, host, destImage, owner, touched);
      touched.add(destImage);
    } else if (req.add && src.stat.isFile() && isArchive(src.real)) {
      const host = mkdirInRoot(req.root, destImage, owner, touched);
      try {
        await applyLayer(host, src.real, { absolutePaths: 'root' });
      } catch (cause) {
        throw new CopyError(`${describe(req)}: extracting ${src.rel}: ${(cause as Error).message}`, { cause });
      }
      touched.add(destImage);
    } else {
      const target = intoDir ? posix.join(destImage, basename(src.rel)) : destImage;
      mkdirInRoot(req.root, posix.dirname(target), owner, touched);
      copyOne(req, src.real, src.stat, resolveInRoot(req.root, target, false), owner);
      touched.add(target);
    }
  }
  return [...touched].sort();
}

function copyOne(req: CopyRequest, from: string, st: Stats, to: string, owner: { uid: number; gid: number }): void {
  let existing: Stats | undefined;
  try {
    existing = lstatSync(to);
  } catch {
    existing = undefined;
  }
  if (existing?.isDirectory()) {
    if (!st.isDirectory()) rmSync(to, { recursive: true });
  } else if (existing) unlinkSync(to);
  if (st.isSymbolicLink()) {
    symlinkSync(readlinkSync(from), to);
    lchownSync(to, owner.uid, owner.gid);
    lutimesSync(to, st.atime, st.mtime);
    return;
  }
  if (st.isDirectory()) {
    if (!existing?.isDirectory()) mkdirSync(to);
  } else if (st.isFile()) {
    copyFileSync(from, to);
  } else {
    throw new CopyError(`${describe(req)}: ${from} is not a regular file, directory or symlink`);
  }
  lchownSync(to, owner.uid, owner.gid);
  chmodSync(to, req.mode ?? st.mode & 0o7777);
  lutimesSync(to, st.atime, st.mtime);
}

/** Copies the contents of directory `from` into the existing directory `to` (image path `image`). */
function copyTree(req: CopyRequest, from: string, to: string, image: string, owner: { uid: number; gid: number }, touched: Set<string>): void {
  for (const name of readdirSync(from).sort()) {
    req.signal?.throwIfAborted();
    const src = join(from, name);
    const st = lstatSync(src);
    const childImage = posix.join(image, name);
    const host = resolveInRoot(req.root, childImage, false);
    copyOne(req, src, st, host, owner);
    if (st.isDirectory()) copyTree(req, src, host, childImage, owner, touched);
  }
  const st = lstatSync(from);
  if (!touched.has(image)) return;
  chmodSync(to, req.mode ?? st.mode & 0o7777);
}
