/**
 * Mounts that dockerd (overlay2 layers, nsfs for network namespaces, shm) may
 * leave under its directories, and taking them down.
 */
import { readFileSync } from 'node:fs';
import { run } from './proc.ts';

function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const point = unescapeMountPath(field);
    if (point === dir || point.startsWith(prefix)) points.push(point);
  }
  return points.sort((a, b) => b.length - a.length);
}

/** Unmounts everything at or below `dir` (lazily when a plain unmount is refused). */
export async function unmountAll(dir: string): Promise<void> {
  for (let round = 0; round < 5; round++) {
    const points = mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) {
      try {
        await run('umount', [point]);
      } catch {
        await run('umount', ['-l', point]).catch(() => undefined);
      }
    }
  }
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`unmounting under ${dir}: still mounted: ${left.join(', ')}`);
}
