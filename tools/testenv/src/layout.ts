/**
 * A minimal, reproducible OCI image layout writer: layers made with GNU tar
 * (sorted, fixed mtime, numeric owners, no pax atime/ctime) and `gzip -n`,
 * digests with node:crypto, JSON written here.
 */
import { createHash } from 'node:crypto';
import { createReadStream, openSync, closeSync } from 'node:fs';
import { copyFile, link, mkdir, rename, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { chainError, pidAlive, run, sleep } from './proc.ts';

export const MEDIA_TYPES = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

export interface Layer {
  /** The compressed blob. */
  descriptor: Descriptor;
  /** sha256 of the uncompressed tar. */
  diffId: string;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/**
 * Tars `entries` (paths relative to `rootDir`) reproducibly: sorted, every mtime
 * set to `mtime`, owners as numbers only (no names from this machine), pax format
 * without atime/ctime and with a pid-free extended-header name.
 */
export async function createTar(rootDir: string, entries: readonly string[], tarFile: string, mtime: number): Promise<void> {
  await run('tar', [
    '--create',
    '--file', tarFile,
    '--directory', rootDir,
    '--sort=name',
    `--mtime=@${mtime}`,
    '--numeric-owner',
    '--format=pax',
    '--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime',
    '--',
    ...[...entries].sort(),
  ]);
}

function blobPath(layoutDir: string, digest: string): string {
  return join(layoutDir, 'blobs', ...digest.split(':'));
}

async function ensureLayoutDirs(layoutDir: string): Promise<void> {
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
}

/** Writes bytes as a blob; returns its descriptor. */
export async function writeBlob(layoutDir: string, mediaType: string, data: Buffer): Promise<Descriptor> {
  await ensureLayoutDirs(layoutDir);
  const digest = sha256(data);
  await writeFile(blobPath(layoutDir, digest), data);
  return { mediaType, digest, size: data.length };
}

/** Compresses a tar with `gzip -n` into the layout as a layer blob. */
export async function addTarLayer(layoutDir: string, tarFile: string): Promise<Layer> {
  await ensureLayoutDirs(layoutDir);
  const diffId = await sha256File(tarFile);
  const tmp = join(layoutDir, 'blobs', `.layer-${process.pid}-${Date.now()}.tmp`);
  const fd = openSync(tmp, 'w');
  try {
    await run('gzip', ['-n', '-c', tarFile], { stdoutFd: fd });
  } finally {
    closeSync(fd);
  }
  const digest = await sha256File(tmp);
  const { size } = await stat(tmp);
  await rename(tmp, blobPath(layoutDir, digest));
  return { descriptor: { mediaType: MEDIA_TYPES.layerGzip, digest, size }, diffId };
}

/** Puts a blob of one layout into another (a hard link where possible). */
export async function shareBlob(fromLayout: string, toLayout: string, digest: string): Promise<void> {
  await ensureLayoutDirs(toLayout);
  const to = blobPath(toLayout, digest);
  if (await stat(to).catch(() => undefined)) return;
  await link(blobPath(fromLayout, digest), to).catch(() => copyFile(blobPath(fromLayout, digest), to));
}

export interface ImageSpec {
  /** The image config (`config`, `history`, …); `rootfs` is filled in from the layers. */
  config: Record<string, unknown>;
  layers: readonly Layer[];
  tag: string;
}

/** Writes config, manifest, `index.json` (one tagged manifest) and `oci-layout`; returns the manifest descriptor. */
export async function writeImage(layoutDir: string, spec: ImageSpec): Promise<Descriptor> {
  const config = {
    ...spec.config,
    rootfs: { type: 'layers', diff_ids: spec.layers.map((l) => l.diffId) },
  };
  const configDesc = await writeBlob(layoutDir, MEDIA_TYPES.config, Buffer.from(JSON.stringify(config)));
  const manifest = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.manifest,
    config: configDesc,
    layers: spec.layers.map((l) => l.descriptor),
  };
  const manifestDesc = await writeBlob(layoutDir, MEDIA_TYPES.manifest, Buffer.from(JSON.stringify(manifest)));
  const index = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPES.index,
    manifests: [{ ...manifestDesc, annotations: { [REF_NAME_ANNOTATION]: spec.tag } }],
  };
  await writeFile(join(layoutDir, 'index.json'), `${JSON.stringify(index)}\n`);
  await writeFile(join(layoutDir, 'oci-layout'), `${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
  return manifestDesc;
}

/** The manifest descriptor tagged `tag` in a layout's index.json. */
export async function readTaggedManifest(layoutDir: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as { manifests?: Descriptor[] };
  const found = index.manifests?.find((m) => m.annotations?.[REF_NAME_ANNOTATION] === tag);
  if (!found) throw new Error(`reading ${join(layoutDir, 'index.json')}: no manifest tagged ${tag}`);
  return found;
}

/**
 * Builds a directory atomically: `build` fills a fresh temporary sibling, which is
 * then renamed to `finalDir`. When another process got there first, its result is
 * kept and ours discarded (inputs and output are the same by construction).
 */
export async function buildAtomically(finalDir: string, build: (tmpDir: string) => Promise<void>): Promise<void> {
  const tmpDir = `${finalDir}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
  await rm(tmpDir, { recursive: true, force: true });
  await mkdir(tmpDir, { recursive: true });
  try {
    await build(tmpDir);
    await rename(tmpDir, finalDir);
  } catch (error) {
    await rm(tmpDir, { recursive: true, force: true });
    const code = (error as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await stat(finalDir).catch(() => undefined))?.isDirectory()) return;
    throw error;
  }
}

/**
 * Runs `fn` while holding a lock directory (created atomically with mkdir, with the
 * owner's pid inside). A lock whose owner is gone is taken over. Used where two
 * processes would otherwise both spend long on the same build.
 */
export async function withLock<T>(lockDir: string, fn: () => Promise<T>, timeoutMs = 30 * 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await mkdir(lockDir);
      await writeFile(join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number(await readFile(join(lockDir, 'pid'), 'utf8').catch(() => ''));
      if (owner > 0 && !pidAlive(owner)) {
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`waiting for the lock ${lockDir} (held by pid ${owner || 'unknown'})`);
      await sleep(250);
    }
  }
  try {
    return await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}

/**
 * Makes the cached directory `dir` unless it holds the file `marker` already: `make` runs
 * under `<dir>.lock` (another process may be making it), and its failure is chained with `what`.
 */
export async function ensureCachedDir(dir: string, marker: string, what: string, make: () => Promise<void>): Promise<void> {
  const present = async (): Promise<boolean> => (await stat(join(dir, marker)).catch(() => undefined))?.isFile() === true;
  if (await present()) return;
  await mkdir(dirname(dir), { recursive: true });
  await withLock(`${dir}.lock`, async () => {
    if (await present()) return;
    await make();
  }).catch((error: unknown) => {
    throw chainError(what, error);
  });
}
