/**
 * buildah's containers-storage inside the backend's work area: `--root` and
 * `--runroot` there, the driver chosen once (overlay when a real mount works
 * there, else vfs), and everything unmounted and removed on cleanup.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runTool } from '@cnb-extender/image-backend-kit';

export type StorageDriver = 'overlay' | 'vfs';

export interface BuildahStorage {
  root: string;
  runroot: string;
  driver: StorageDriver;
}

/** The global flags that put buildah on this storage. */
export function storageArgs(storage: BuildahStorage): string[] {
  return ['--root', storage.root, '--runroot', storage.runroot, '--storage-driver', storage.driver];
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export async function mountsBelow(dir: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (s: string) => s.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
  const points = text
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map(unescape)
    .filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Unmount everything at or below `dir` (lazily when busy). */
export async function unmountBelow(dir: string): Promise<string[]> {
  const failed: string[] = [];
  for (let round = 0; round < 3; round++) {
    const points = await mountsBelow(dir);
    if (points.length === 0) return [];
    for (const point of points) {
      const r = await runTool('umount', [point]).catch(() => undefined);
      if (r?.code !== 0) await runTool('umount', ['-l', point]).catch(() => undefined);
    }
  }
  failed.push(...(await mountsBelow(dir)));
  return failed;
}

/** Does an overlay storage work under `dir`? Tried with a real container mount. */
async function overlayWorks(buildah: string, storage: BuildahStorage, env: NodeJS.ProcessEnv, signal?: AbortSignal): Promise<boolean> {
  const args = storageArgs(storage);
  const opts = { env, ...(signal ? { signal } : {}) };
  const from = await runTool(buildah, [...args, 'from', '--pull-never', 'scratch'], opts);
  const container = from.stdout.trim().split('\n').pop()?.trim();
  if (from.code !== 0 || !container) return false;
  const mount = await runTool(buildah, [...args, 'mount', container], opts);
  await runTool(buildah, [...args, 'rm', container], opts);
  return mount.code === 0;
}

/** Create the storage under `dir`; `driver: 'auto'` probes overlay first. */
export async function prepareStorage(
  buildah: string,
  dir: string,
  driver: StorageDriver | 'auto',
  env: NodeJS.ProcessEnv,
  signal?: AbortSignal,
): Promise<BuildahStorage> {
  const make = async (d: StorageDriver): Promise<BuildahStorage> => {
    const storage = { root: join(dir, `root-${d}`), runroot: join(dir, `runroot-${d}`), driver: d };
    await mkdir(storage.root, { recursive: true });
    await mkdir(storage.runroot, { recursive: true });
    return storage;
  };
  if (driver !== 'auto') return make(driver);
  const overlay = await make('overlay');
  if (await overlayWorks(buildah, overlay, env, signal).catch(() => false)) return overlay;
  await removeStorage(buildah, overlay, env);
  return make('vfs');
}

/** Remove containers and images, unmount what is left, delete the directories. */
export async function removeStorage(buildah: string, storage: BuildahStorage, env: NodeJS.ProcessEnv): Promise<void> {
  const args = storageArgs(storage);
  await runTool(buildah, [...args, 'rm', '--all'], { env }).catch(() => undefined);
  await runTool(buildah, [...args, 'rmi', '--all', '--force'], { env }).catch(() => undefined);
  for (const dir of [storage.runroot, storage.root]) {
    const left = await unmountBelow(dir);
    if (left.length > 0) throw new Error(`unmounting buildah storage: still mounted: ${left.join(', ')}`);
    await rm(dir, { recursive: true, force: true });
  }
}
