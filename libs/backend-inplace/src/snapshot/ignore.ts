import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/**
 * Paths a snapshot never records, in image terms (`/proc`, not `<root>/proc`).
 * The platform directories (`<app>`, `<layers>`, `<platform>`) and the extend
 * dir are added by the caller; the runtime's bind mounts are found in
 * /proc/self/mountinfo when the root is `/`.
 */
export const DEFAULT_IGNORE_PATHS: readonly string[] = [
  '/proc',
  '/sys',
  '/dev',
  '/var/run',
  '/etc/hosts',
  '/etc/hostname',
  '/etc/resolv.conf',
  '/etc/mtab',
];

/** `/a/b/` → `a/b`; throws on relative paths. */
export function toLayerPath(imagePath: string): string {
  if (!imagePath.startsWith('/')) throw new Error(`ignore path ${JSON.stringify(imagePath)} is not absolute`);
  return resolve(imagePath).slice(1);
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Mount points strictly below `root` (as image paths), from /proc/self/mountinfo.
 * Inside a container these are the runtime's bind mounts and volumes
 * (`/etc/hosts`, `/workspace`, `/layers`, …): never part of the image.
 */
export function mountPointsUnder(root: string, mountinfo = '/proc/self/mountinfo'): string[] {
  const base = resolve(root);
  const prefix = base === '/' ? '/' : `${base}/`;
  const out: string[] = [];
  let text: string;
  try {
    text = readFileSync(mountinfo, 'utf8');
  } catch {
    return out;
  }
  for (const line of text.split('\n')) {
    const field = line.split(' ')[4];
    if (!field) continue;
    const point = unescapeMount(field);
    if (point !== base && point.startsWith(prefix)) out.push(`/${point.slice(prefix.length)}`);
  }
  return out;
}
