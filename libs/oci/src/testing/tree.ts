import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { walkDirectory } from '../layer/walk.ts';

/**
 * A comparable description of a directory tree: one line per entry with type,
 * mode, owner, size and content hash, link target, device numbers, xattrs and
 * hardlink group. Times are left out. For tests.
 */
export async function describeTree(root: string, options: { xattrs?: boolean } = {}): Promise<string[]> {
  const entries = await walkDirectory(root, { xattrs: options.xattrs ?? true });
  const groups = new Map<string, string>();
  const lines: string[] = [];
  for (const e of entries) {
    const parts = [e.path, e.type, (e.mode & 0o7777).toString(8), `${e.uid}:${e.gid}`];
    if (e.type === 'file') {
      parts.push(String(e.size));
      parts.push(createHash('sha256').update(await readFile(e.source!)).digest('hex').slice(0, 16));
      if (e.inode) {
        const first = groups.get(e.inode);
        if (first === undefined) groups.set(e.inode, e.path);
        else parts.push(`hardlink-of=${first}`);
      }
    }
    if (e.linkTarget !== undefined) parts.push(`-> ${e.linkTarget}`);
    if (e.devMajor !== undefined) parts.push(`dev=${e.devMajor},${e.devMinor}`);
    if (e.xattrs) {
      for (const [k, v] of Object.entries(e.xattrs)) parts.push(`${k}=${Buffer.from(v).toString('hex')}`);
    }
    lines.push(parts.join(' '));
  }
  return lines;
}
