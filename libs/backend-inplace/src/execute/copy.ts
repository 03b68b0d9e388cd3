import { chmodSync, closeSync, copyFileSync, lchownSync, lstatSync, lutimesSync, mkdirSync, openSync, readdirSync, readlinkSync, readSync, realpathSync, rmSync, type Stats, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, posix, relative, sep } from 'node:path';
import { contextPaths, dockerignoreMatcher, goMatch, hasWildcards, type DockerignoreFile } from '@cnb-extender/dockerfile';
import { applyLayer, detectCompression } from '@cnb-extender/oci';
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
  /**
   * The build's ignore file (`readDockerignore`): what it excludes is not part
   * of the context, as BuildKit sends the context to a build.
   */
  ignore?: DockerignoreFile;
  allowRemote?: boolean;
  signal?: AbortSignal;
}

const URL_RE = /^[a-z][a-z0-9+.-]*:\/\//i;

/** Parses `--chmod` (octal only, as BuildKit without the labs syntax). */
export function parseChmod(value: string): number {
  if (!/^[0-7]{3,4}$/.test(value)) throw new CopyError(`invalid --chmod=${value}: only octal modes like 0755 are supported`);
  return parseInt(value, 8);
}

/**
 * The build context as a build sees it: the paths its ignore file leaves in
 * (with the directories above re-included entries), relative to the real
 * context directory. Without patterns everything is in it.
 */
interface ContextView {
  real: string;
  ignore: DockerignoreFile | undefined;
  paths: Set<string> | undefined;
}

async function contextView(real: string, ignore: DockerignoreFile | undefined): Promise<ContextView> {
  const exclude = dockerignoreMatcher(ignore);
  return { real, ignore, paths: exclude.empty ? undefined : await contextPaths(real, { exclude }) };
}

/** Whether the context holds `rel` (relative to the real context, `/`-separated; '' is the context). */
function inContext(view: ContextView, rel: string): boolean {
  return view.paths === undefined || rel === '' || view.paths.has(rel);
}

/** `host` (inside the real context) as a context path. */
function contextRel(view: ContextView, host: string): string {
  return relative(view.real, host).split(sep).join('/');
}

/** Context-relative paths matching `pattern` (a clean relative path with wildcards, Go `filepath.Match` per component). */
function expandGlob(view: ContextView, pattern: string): string[] {
  let found = [''];
  for (const part of pattern.split('/')) {
    const next: string[] = [];
    for (const base of found) {
      if (!hasWildcards(part)) {
        next.push(base === '' ? part : `${base}/${part}`);
        continue;
      }
      let names: string[];
      let realBase: string;
      try {
        names = readdirSync(join(view.real, base));
        realBase = realpathSync(join(view.real, base));
      } catch {
        continue;
      }
      for (const n of names.sort()) {
        if (!goMatch(part, n)) continue;
        // what the ignore file leaves out is not there to match
        if (!inContext(view, contextRel(view, join(realBase, n)))) continue;
        next.push(base === '' ? n : `${base}/${n}`);
      }
    }
    found = next;
  }
  return found;
}

/** A context source: its relative name and the real path it resolves to (checked to be in the context). */
interface Source {
  rel: string;
  real: string;
  stat: Stats;
}

/** Why a source the ignore file leaves out is not found. */
function excludedBy(view: ContextView): string {
  return view.ignore === undefined ? '' : ` (${view.ignore.path} excludes it)`;
}

function resolveSources(req: CopyRequest, view: ContextView): Source[] {
  const out: Source[] = [];
  for (const word of req.sources) {
    const rel = posix.normalize(word.replace(/^\/+/, '') || '.');
    if (rel === '..' || rel.startsWith('../')) {
      throw new CopyError(`source ${JSON.stringify(word)} is outside the build context`);
    }
    const names = hasWildcards(rel) ? expandGlob(view, rel) : [rel];
    if (names.length === 0) throw new CopyError(`no source files were specified: ${JSON.stringify(word)} matches nothing in the build context`);
    for (const name of names) {
      const host = name === '.' ? view.real : join(view.real, name);
      let real: string;
      try {
        real = realpathSync(host);
      } catch (cause) {
        throw new CopyError(`source ${JSON.stringify(name)}: ${(cause as Error).message}`, { cause });
      }
      if (!isWithin(view.real, real)) {
        throw new CopyError(`source ${JSON.stringify(name)} resolves to ${real}, outside the build context`);
      }
      // The source itself (a symlink as it is) and what it resolves to must both be in the context.
      if (name !== '.' && (!inContext(view, contextRel(view, join(realpathSync(dirname(host)), basename(host)))) || !inContext(view, contextRel(view, real)))) {
        throw new CopyError(`source ${JSON.stringify(name)}: not found in the build context${excludedBy(view)}`);
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
    if (detectCompression(head.subarray(0, n)) !== 'none') return true;
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
 * Sources that resolve outside the context (`..`, symlinks) are refused, and
 * what the build's ignore file excludes is not in the context. A local tar
 * archive given to ADD is extracted as Docker extracts it: `.wh.` names are
 * files like any other, and no entry may land outside the destination.
 * Returns the image paths written (top-level targets and created directories).
 * Errors do not name the instruction: the caller does.
 */
export async function copyIntoRoot(req: CopyRequest): Promise<string[]> {
  let realContext: string;
  try {
    realContext = realpathSync(req.contextDir);
  } catch (cause) {
    throw new CopyError(`build context ${req.contextDir}: ${(cause as Error).message}`, { cause });
  }
  const owner = req.owner ?? { uid: 0, gid: 0 };
  const touched = new Set<string>();
  const remote = req.sources.filter((s) => URL_RE.test(s));
  if (remote.length > 0 && !req.add) throw new CopyError(`source can't be a URL for COPY (${remote[0]})`);
  if (remote.length > 0 && !req.allowRemote) {
    throw new CopyError(`remote source ${remote[0]} is not allowed (ADD of URLs needs network access, which this build does not permit)`);
  }
  const localWords = req.sources.filter((s) => !URL_RE.test(s));
  const view = localWords.length === 0 ? { real: realContext, ignore: undefined, paths: undefined } : await contextView(realContext, req.ignore);
  const local = resolveSources({ ...req, sources: localWords }, view);
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
    throw new CopyError(`with more than one source the destination must be a directory and end with a /`);
  }

  for (const url of remote) {
    req.signal?.throwIfAborted();
    const name = basename(new URL(url).pathname) || 'index.html';
    const target = intoDir ? posix.join(destImage, name) : destImage;
    mkdirInRoot(req.root, posix.dirname(target), owner, touched);
    const response = await fetch(url, req.signal ? { signal: req.signal } : {});
    if (!response.ok) throw new CopyError(`fetching ${url}: HTTP ${response.status}`);
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
      copyTree(req, view, src.real, host, destImage, owner, touched);
      touched.add(destImage);
    } else if (req.add && src.stat.isFile() && isArchive(src.real)) {
      const host = mkdirInRoot(req.root, destImage, owner, touched);
      try {
        // as Docker: the archive is extracted as it is (`.wh.` names are files like any other)
        await applyLayer(host, src.real, { absolutePaths: 'root', whiteouts: 'ordinary' });
      } catch (cause) {
        throw new CopyError(`extracting ${src.rel}: ${(cause as Error).message}`, { cause });
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
    throw new CopyError(`${from} is not a regular file, directory or symlink`);
  }
  lchownSync(to, owner.uid, owner.gid);
  chmodSync(to, req.mode ?? st.mode & 0o7777);
  lutimesSync(to, st.atime, st.mtime);
}

/**
 * Copies the contents of directory `from` (a real directory in the context)
 * into the existing directory `to` (image path `image`), leaving out what is
 * not in the context.
 */
function copyTree(req: CopyRequest, view: ContextView, from: string, to: string, image: string, owner: { uid: number; gid: number }, touched: Set<string>): void {
  const fromRel = contextRel(view, from);
  for (const name of readdirSync(from).sort()) {
    req.signal?.throwIfAborted();
    if (!inContext(view, fromRel === '' ? name : `${fromRel}/${name}`)) continue;
    const src = join(from, name);
    const st = lstatSync(src);
    const childImage = posix.join(image, name);
    const host = resolveInRoot(req.root, childImage, false);
    copyOne(req, src, st, host, owner);
    if (st.isDirectory()) copyTree(req, view, src, host, childImage, owner, touched);
  }
  const st = lstatSync(from);
  if (!touched.has(image)) return;
  chmodSync(to, req.mode ?? st.mode & 0o7777);
}
