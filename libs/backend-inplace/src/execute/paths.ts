import { lstatSync, readlinkSync } from 'node:fs';
import { posix } from 'node:path';

export class PathEscapeError extends Error {
  override name = 'PathEscapeError';
}

/** `a/../b/./c` → `/b/c`: a clean absolute image path (".." stops at "/"). */
export function cleanImagePath(path: string, cwd = '/'): string {
  return posix.resolve('/', cwd, path);
}

/**
 * Resolves `imagePath` inside the root filesystem at `root` the way the
 * kernel would after a chroot: symlinks are followed with absolute targets
 * read relative to `root` and ".." never climbs above it. Returns the host
 * path (`<root>/<resolved>`); the last component need not exist. With
 * `followLast` false the final component is not followed (for lstat/replace).
 */
export function resolveInRoot(root: string, imagePath: string, followLast = true): string {
  const base = root === '/' ? '' : root.replace(/\/+$/, '');
  const pending = cleanImagePath(imagePath).split('/').filter((p) => p !== '');
  const done: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift()!;
    if (part === '.') continue;
    if (part === '..') {
      done.pop();
      continue;
    }
    const host = `${base}/${[...done, part].join('/')}`;
    const isLast = pending.length === 0;
    let target: string | undefined;
    try {
      if (lstatSync(host).isSymbolicLink() && (!isLast || followLast)) target = readlinkSync(host);
    } catch {
      // missing: the rest is taken literally
    }
    if (target === undefined) {
      done.push(part);
      continue;
    }
    if (++hops > 255) throw new PathEscapeError(`resolving ${imagePath} in ${root}: too many levels of symbolic links`);
    if (target.startsWith('/')) done.length = 0;
    pending.unshift(...target.split('/').filter((p) => p !== ''));
  }
  return `${base}/${done.join('/')}` || '/';
}

/** Whether host path `p` is `dir` or below it. */
export function isWithin(dir: string, p: string): boolean {
  const d = dir.endsWith('/') ? dir : `${dir}/`;
  return p === dir || p.startsWith(d) || dir === '/';
}
