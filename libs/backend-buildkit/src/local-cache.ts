/**
 * BuildKit's `type=local` cache through the session, as buildctl does it: the
 * cache lives on the extender's side (by default in the extend directory), the
 * daemon reads and writes its blobs through the session's content service
 * (store id `local:<dir>`), and the client keeps the directory's index.json,
 * whose tag names the cache manifest to import next time.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { LayoutContentStore, type CacheEntry } from '@cnb-extender/buildkit-session';
import { MediaType, canonicalJson, type Descriptor } from '@cnb-extender/oci';

/** Where a `type=local` cache without `src`/`dest` goes. */
export function defaultLocalCacheDir(extendDir: string): string {
  return join(extendDir, 'cache', 'buildkit');
}

const REF_NAME = 'org.opencontainers.image.ref.name';

interface LayoutIndex {
  schemaVersion: number;
  mediaType?: string;
  manifests: (Descriptor & { annotations?: Record<string, string> })[];
}

async function readIndex(dir: string): Promise<LayoutIndex | undefined> {
  try {
    const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as LayoutIndex;
    return Array.isArray(index.manifests) ? index : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`reading the BuildKit cache index ${join(dir, 'index.json')}: ${(err as Error).message}`, { cause: err });
  }
}

export interface LocalCachePlan {
  imports: CacheEntry[];
  exports: CacheEntry[];
  stores: Record<string, LayoutContentStore>;
  /** Directories whose index.json gets the exported cache manifest, with its tag. */
  toTag: { dir: string; tag: string }[];
  /** Imports left out because the directory holds no cache yet. */
  missing: string[];
}

/**
 * Resolves the local entries: directories made absolute (default: the extend
 * directory's), imports pinned to the digest their tag names (left out while
 * there is none), one content store per directory.
 */
export async function planLocalCache(imports: readonly CacheEntry[], exports: readonly CacheEntry[], extendDir: string): Promise<LocalCachePlan> {
  const plan: LocalCachePlan = { imports: [], exports: [], stores: {}, toTag: [], missing: [] };
  const writable = new Set<string>();
  for (const entry of exports) {
    if (entry.type !== 'local') {
      plan.exports.push(entry);
      continue;
    }
    const dir = resolve(entry.attrs['dest'] ?? defaultLocalCacheDir(extendDir));
    await mkdir(join(dir, 'blobs'), { recursive: true });
    writable.add(dir);
    plan.toTag.push({ dir, tag: entry.attrs['tag'] ?? 'latest' });
    plan.exports.push({ type: 'local', attrs: { ...entry.attrs, dest: dir } });
  }
  for (const entry of imports) {
    if (entry.type !== 'local') {
      plan.imports.push(entry);
      continue;
    }
    const dir = resolve(entry.attrs['src'] ?? defaultLocalCacheDir(extendDir));
    let digest = entry.attrs['digest'];
    if (!digest) {
      const tag = entry.attrs['tag'] ?? 'latest';
      digest = (await readIndex(dir))?.manifests.find((m) => m.annotations?.[REF_NAME] === tag)?.digest;
    }
    if (!digest) {
      plan.missing.push(dir);
      continue;
    }
    plan.imports.push({ type: 'local', attrs: { ...entry.attrs, src: dir, digest } });
    plan.stores[`local:${dir}`] ??= new LayoutContentStore({ dirs: [dir] });
  }
  for (const dir of writable) plan.stores[`local:${dir}`] = new LayoutContentStore({ dirs: [dir], writable: true });
  return plan;
}

/** Records the exported cache manifest (`cache.manifest` in the solve response) under its tag, atomically. */
export async function tagLocalCache(plan: LocalCachePlan, exporterResponse: Record<string, string>): Promise<void> {
  const encoded = exporterResponse['cache.manifest'];
  if (!encoded || plan.toTag.length === 0) return;
  const descriptor = JSON.parse(encoded) as Descriptor;
  for (const { dir, tag } of plan.toTag) {
    const index = (await readIndex(dir)) ?? { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [] };
    index.manifests = [...index.manifests.filter((m) => m.annotations?.[REF_NAME] !== tag), { ...descriptor, annotations: { ...descriptor.annotations, [REF_NAME]: tag } }];
    const tmp = join(dir, `.index.json.${randomBytes(4).toString('hex')}`);
    await writeFile(tmp, canonicalJson(index));
    await rename(tmp, join(dir, 'index.json'));
    await writeFile(join(dir, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
  }
}
