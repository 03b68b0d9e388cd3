/**
 * Images exchanged with a Docker Engine as tar archives.
 *
 * `readImageArchive` reads what `GET /images/{name}/get` (`docker save`) writes,
 * in both of its forms: the docker-archive of Engines before 25
 * (`<id>/layer.tar`, `<id>.json`, `manifest.json`; identical layers as
 * symlinks) and the OCI image layout of Engine 25 and later (`blobs/sha256/…`,
 * `index.json`, `oci-layout`, and a `manifest.json` pointing into `blobs/`; one
 * blob may stand for several layers). Either way `manifest.json` (its first
 * image) names the config and the layers. A plain OCI layout without it (what
 * BuildKit's `oci` exporter streams) is read through `index.json`: its first
 * manifest, or in a nested index the first one for a real platform (BuildKit
 * puts attestations beside the image under `unknown/unknown`). The archive is read as a stream and
 * never extracted: entry names only ever key an in-memory view of the archive,
 * so nothing is written outside `dir`, and names, symlinks or manifest paths
 * that lead outside the archive are refused.
 *
 * `writeImageArchive` writes the docker-archive form, which `/images/load` of
 * every Engine from 20.10 on loads.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { access, link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { parseDigest, readTar, sha256, writeLayer, type Digest, type ImageConfig, type LayerEntry, type TarEntry } from '@cnb-extender/oci';
import type { BuiltImage } from './assemble.ts';
import { ImageBackendError, messageOf } from './errors.ts';

export interface ReadImageArchiveOptions {
  /** Where the layer blobs go (created if missing), one file per distinct blob (`<dir>/sha256/<hex>`). Nothing is written elsewhere. */
  dir: string;
  signal?: AbortSignal;
  /**
   * Do not keep the bytes of the bottom `skipLayers` layers (the base's copies,
   * which the caller holds already); their `open()` throws. A blob that a higher
   * layer lists too is kept for that layer.
   */
  skipLayers?: number;
}

/** Entries up to this size are held in memory while the archive streams by (configs, manifests, small layers). */
const MEMORY_ENTRY_LIMIT = 1 << 20;
/** At most this much in memory in all; larger entries, and any beyond it, go to a file under `dir`. */
const MEMORY_TOTAL_LIMIT = 64 << 20;
const MAX_SYMLINK_HOPS = 40;

type Blob = { kind: 'memory'; bytes: Buffer; digest: Digest } | { kind: 'file'; path: string; digest: Digest };
type Node = { kind: 'file'; blob: Blob } | { kind: 'symlink'; target: string } | { kind: 'dir' };

/** An entry name as shown in messages: as stored, quoted only when it holds blanks or control characters. */
function shown(name: string): string {
  return /[\s\p{Cc}]/u.test(name) || name === '' ? JSON.stringify(name) : name;
}

function refused(message: string): ImageBackendError {
  return new ImageBackendError(message);
}

/** The archive's view of its entries, keyed by resolved path (no symlinks, no `.`/`..`). */
class ArchiveView {
  readonly nodes = new Map<string, Node>();

  /**
   * Components of `name` relative to the archive root, `.` and `..` applied
   * lexically; throws (naming `what`) when it is absolute or climbs out.
   */
  clean(name: string, what: string): string[] {
    if (name.includes('\0')) throw refused(`${what} contains a NUL byte`);
    if (name.startsWith('/')) throw refused(`${what} escapes the archive root (absolute path)`);
    const out: string[] = [];
    for (const part of name.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (out.length === 0) throw refused(`${what} escapes the archive root`);
        out.pop();
      } else out.push(part);
    }
    return out;
  }

  /** `parts` with every symlink on the way replaced by its target (the last component too when `followLast`). */
  resolve(parts: readonly string[], what: string, followLast: boolean): string[] {
    const out: string[] = [];
    const queue = [...parts];
    let hops = 0;
    while (queue.length > 0) {
      const part = queue.shift()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (out.length === 0) throw refused(`${what} escapes the archive root`);
        out.pop();
        continue;
      }
      out.push(part);
      if (queue.length === 0 && !followLast) break;
      const node = this.nodes.get(out.join('/'));
      if (node?.kind !== 'symlink') continue;
      if (++hops > MAX_SYMLINK_HOPS) throw refused(`${what}: too many levels of symbolic links at ${shown(out.join('/'))}`);
      out.pop();
      queue.unshift(...node.target.split('/'));
    }
    return out;
  }

  /** Where entry `name` lands: its parent resolved through the symlinks seen so far. */
  place(name: string): string | undefined {
    const what = `image archive entry ${shown(name)}`;
    const parts = this.clean(name, what);
    const last = parts.pop();
    if (last === undefined) return undefined; // the root itself (`./`)
    return [...this.resolve(parts, what, true), last].join('/');
  }

  /** Record a symlink at `at`, refusing one whose target leads outside the archive. */
  symlink(name: string, at: string, target: string): void {
    const what = `image archive entry ${shown(name)}`;
    if (target.includes('\0')) throw refused(`${what} is a symlink whose target contains a NUL byte`);
    if (target.startsWith('/')) throw refused(`${what} is a symlink to ${shown(target)}, which escapes the archive root`);
    let depth = at.split('/').length - 1;
    for (const part of target.split('/')) {
      if (part === '..') depth--;
      else if (part !== '' && part !== '.') depth++;
      if (depth < 0) throw refused(`${what} is a symlink to ${shown(target)}, which escapes the archive root`);
    }
    this.nodes.set(at, { kind: 'symlink', target });
  }

  /** The file at `path` (an archive path from the manifest), following symlinks. */
  file(path: string, what: string): Blob | undefined {
    const resolved = this.resolve(this.clean(path, `${what} ${shown(path)}`), `${what} ${shown(path)}`, true).join('/');
    const node = this.nodes.get(resolved);
    return node?.kind === 'file' ? node.blob : undefined;
  }
}

/** Content-addressed files under `dir`: one per distinct blob; remembers which this call created. */
class BlobFiles {
  readonly dir: string;
  readonly created = new Set<string>();
  #incoming = 0;
  #ready: Promise<void> | undefined;

  constructor(dir: string) {
    this.dir = dir;
  }

  pathOf(digest: Digest): string {
    return join(this.dir, 'sha256', digest.slice('sha256:'.length));
  }

  async #mkdir(): Promise<void> {
    this.#ready ??= mkdir(join(this.dir, 'sha256'), { recursive: true }).then(() => undefined);
    await this.#ready;
  }

  /** Move the file at `temp` to its content address (dropped when that blob is there already). */
  async #settle(temp: string, digest: Digest): Promise<string> {
    const path = this.pathOf(digest);
    try {
      // a link fails when the blob is there already, where a rename would replace it
      await link(temp, path);
      this.created.add(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') {
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
        // no hard links on this file system
        if (!(await exists(path))) {
          await rename(temp, path);
          this.created.add(path);
        }
      }
    } finally {
      await rm(temp, { force: true });
    }
    return path;
  }

  /** Stream `body` into a blob file, hashing it on the way. */
  async write(body: AsyncIterable<Uint8Array>, signal: AbortSignal | undefined): Promise<{ path: string; digest: Digest }> {
    await this.#mkdir();
    const temp = join(this.dir, `.incoming-${process.pid}-${++this.#incoming}`);
    const hash = createHash('sha256');
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        hash.update(chunk);
        callback(null, chunk);
      },
    });
    try {
      await pipeline(Readable.from(body, { objectMode: false }), tap, createWriteStream(temp, { flags: 'wx' }), signal ? { signal } : {});
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const digest: Digest = `sha256:${hash.digest('hex')}`;
    return { path: await this.#settle(temp, digest), digest };
  }

  /** Bytes held in memory as a blob file. */
  async put(bytes: Buffer, digest: Digest): Promise<string> {
    await this.#mkdir();
    const temp = join(this.dir, `.incoming-${process.pid}-${++this.#incoming}`);
    try {
      await writeFile(temp, bytes, { flag: 'wx' });
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    return this.#settle(temp, digest);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

interface Memory {
  used: number;
}

/** Keep one regular entry: in memory when small, else in a blob file; `blobs/sha256/<hex>` must hold what its name says. */
async function keep(entry: TarEntry, at: string, files: BlobFiles, memory: Memory, signal: AbortSignal | undefined): Promise<Blob> {
  let blob: Blob;
  if (entry.size <= MEMORY_ENTRY_LIMIT && memory.used + entry.size <= MEMORY_TOTAL_LIMIT) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body()) chunks.push(chunk);
    const bytes = Buffer.concat(chunks);
    memory.used += bytes.length;
    blob = { kind: 'memory', bytes, digest: sha256(bytes) };
  } else {
    const { path, digest } = await files.write(entry.body(), signal);
    blob = { kind: 'file', path, digest };
  }
  const named = /^blobs\/sha256\/([0-9a-f]{64})$/.exec(at)?.[1];
  if (named !== undefined && blob.digest !== `sha256:${named}`) {
    throw new ImageBackendError(`image archive entry ${shown(entry.name)} holds content with digest ${blob.digest}`);
  }
  return blob;
}

async function bytesOf(blob: Blob): Promise<Buffer> {
  return blob.kind === 'memory' ? blob.bytes : readFile(blob.path);
}

interface ManifestEntry {
  Config: string;
  Layers: string[];
}

function parseManifest(bytes: Buffer): ManifestEntry {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new ImageBackendError(`image archive manifest.json is not JSON: ${messageOf(err)}`, { cause: err });
  }
  if (!Array.isArray(value)) throw new ImageBackendError('image archive manifest.json is not a list of images');
  const first = value[0] as Partial<ManifestEntry> | undefined;
  if (first === undefined) throw new ImageBackendError('image archive manifest.json lists no image');
  if (typeof first.Config !== 'string') throw new ImageBackendError('image archive manifest.json: its first image has no Config');
  if (!Array.isArray(first.Layers) || !first.Layers.every((l) => typeof l === 'string')) {
    throw new ImageBackendError('image archive manifest.json: its first image has no list of Layers');
  }
  return { Config: first.Config, Layers: first.Layers };
}

interface OciDescriptor {
  digest?: string;
  platform?: { os?: string };
}

/** A JSON blob of the archive named by its digest, as `blobs/sha256/<hex>`. */
async function ociJson<T>(view: ArchiveView, digest: string | undefined, what: string): Promise<T> {
  let path = 'index.json';
  if (digest !== 'index.json') {
    const parsed = typeof digest === 'string' ? /^sha256:([0-9a-f]{64})$/.exec(digest) : null;
    if (!parsed) throw new ImageBackendError(`image archive ${what}: ${JSON.stringify(digest)} is not a sha256 digest`);
    path = `blobs/sha256/${parsed[1]}`;
  }
  const blob = view.file(path, `image archive ${what}`);
  if (!blob) throw new ImageBackendError(`image archive ${what}: ${path} is not in the archive`);
  try {
    return JSON.parse((await bytesOf(blob)).toString('utf8')) as T;
  } catch (err) {
    throw new ImageBackendError(`image archive ${what} ${path} is not JSON: ${messageOf(err)}`, { cause: err });
  }
}

/** The image of a plain OCI layout, as a manifest.json entry would name it (see module doc). */
async function fromOciIndex(view: ArchiveView): Promise<ManifestEntry> {
  const index = await ociJson<{ manifests?: OciDescriptor[] }>(view, 'index.json', 'index.json');
  let manifest = await ociJson<{ manifests?: OciDescriptor[]; config?: OciDescriptor; layers?: OciDescriptor[] }>(view, index.manifests?.[0]?.digest, 'index.json: manifest');
  if (manifest.manifests) {
    const image = manifest.manifests.find((m) => m.platform?.os !== 'unknown');
    manifest = await ociJson(view, image?.digest, 'nested index: image manifest');
  }
  if (!manifest.config || !Array.isArray(manifest.layers)) throw new ImageBackendError('image archive index.json names no image manifest (no config and layers)');
  const path = (d: OciDescriptor) => `blobs/sha256/${(d.digest ?? '').replace(/^sha256:/, '')}`;
  return { Config: path(manifest.config), Layers: manifest.layers.map(path) };
}

/** Every entry of the archive placed in `view` (file contents kept in memory or in `files`). */
async function readEntries(archive: AsyncIterable<Uint8Array>, view: ArchiveView, files: BlobFiles, signal: AbortSignal | undefined): Promise<void> {
  const memory: Memory = { used: 0 };
  for await (const entry of readTar(archive)) {
    signal?.throwIfAborted();
    const at = view.place(entry.name);
    if (at === undefined) continue;
    if (entry.type === 'directory') {
      if (!view.nodes.has(at)) view.nodes.set(at, { kind: 'dir' });
    } else if (entry.type === 'symlink') {
      view.symlink(entry.name, at, entry.linkTarget);
    } else if (entry.type === 'hardlink') {
      // a second name for an earlier entry, named from the archive root
      const what = `image archive entry ${shown(entry.name)} (hard link to ${shown(entry.linkTarget)})`;
      const target = view.nodes.get(view.resolve(view.clean(entry.linkTarget, what), what, true).join('/'));
      if (target?.kind === 'file') view.nodes.set(at, target);
    } else if (entry.type === 'file') {
      let blob: Blob;
      try {
        blob = await keep(entry, at, files, memory, signal);
      } catch (err) {
        if (err instanceof ImageBackendError || signal?.aborted) throw err;
        throw new ImageBackendError(`reading image archive entry ${shown(entry.name)}: ${messageOf(err)}`, { cause: err });
      }
      view.nodes.set(at, { kind: 'file', blob });
    }
    // devices, fifos and other types are not part of an image archive: ignored
  }
}

/** The image the archive's manifest.json (or OCI index.json) names: its config and its layers' blobs. */
async function archiveImage(view: ArchiveView): Promise<{ config: ImageConfig; diffIds: string[]; blobs: Blob[] }> {
  const manifestBlob = view.file('manifest.json', 'image archive');
  let manifest: ManifestEntry;
  if (manifestBlob) manifest = parseManifest(await bytesOf(manifestBlob));
  else if (view.nodes.has('index.json')) manifest = await fromOciIndex(view);
  else throw new ImageBackendError('image archive has neither a manifest.json nor an OCI index.json');
  const configBlob = view.file(manifest.Config, 'image archive manifest.json: config');
  if (!configBlob) throw new ImageBackendError(`image archive manifest.json: config ${shown(manifest.Config)} is not in the archive`);
  let config: ImageConfig;
  try {
    config = JSON.parse((await bytesOf(configBlob)).toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new ImageBackendError(`image archive config ${shown(manifest.Config)} is not JSON: ${messageOf(err)}`, { cause: err });
  }
  const diffIds = config?.rootfs?.diff_ids;
  if (!Array.isArray(diffIds)) throw new ImageBackendError(`image archive config ${shown(manifest.Config)} has no rootfs.diff_ids`);
  const blobs = manifest.Layers.map((path, i) => {
    const blob = view.file(path, `image archive manifest.json: layer ${i}`);
    if (!blob) throw new ImageBackendError(`image archive manifest.json: layer ${i} ${shown(path)} is not in the archive`);
    return blob;
  });
  if (diffIds.length !== blobs.length) {
    throw new ImageBackendError(`image archive manifest.json lists ${blobs.length} layers but the config's rootfs.diff_ids has ${diffIds.length}`);
  }
  return { config, diffIds, blobs };
}

/** See module doc. */
export async function readImageArchive(archive: AsyncIterable<Uint8Array> | NodeJS.ReadableStream, options: ReadImageArchiveOptions): Promise<BuiltImage> {
  const { signal } = options;
  const files = new BlobFiles(options.dir);
  const view = new ArchiveView();
  try {
    signal?.throwIfAborted();
    await readEntries(archive as AsyncIterable<Uint8Array>, view, files, signal);
    const { config, diffIds, blobs } = await archiveImage(view);
    const skip = Math.max(0, Math.min(options.skipLayers ?? 0, blobs.length));
    // every kept layer gets a file; whatever else this call wrote goes again
    const paths = new Map<Digest, string>();
    for (const blob of blobs.slice(skip)) {
      if (paths.has(blob.digest)) continue;
      paths.set(blob.digest, blob.kind === 'file' ? blob.path : await files.put(blob.bytes, blob.digest));
    }
    const wanted = new Set(paths.values());
    for (const path of files.created) {
      if (wanted.has(path)) continue;
      await rm(path, { force: true });
      files.created.delete(path);
    }
    return {
      config,
      layers: diffIds.map((diffId, i) => {
        const path = i < skip ? undefined : paths.get(blobs[i]!.digest);
        return {
          diffId: diffId as Digest,
          open: () => {
            if (path === undefined) {
              throw new ImageBackendError(`opening layer ${i} (${diffId}) of the image archive: its bytes were not kept (skipLayers ${skip}: the caller has its own copy of the bottom layers)`);
            }
            return createReadStream(path);
          },
        };
      }),
    };
  } catch (err) {
    for (const path of files.created) await rm(path, { force: true });
    const source = archive as { destroy?: (error?: Error) => void };
    if (typeof source.destroy === 'function') source.destroy();
    if (err instanceof ImageBackendError || signal?.aborted) throw err;
    throw new ImageBackendError(`reading the image archive: ${messageOf(err)}`, { cause: err });
  }
}

/** One layer of an archive for `/images/load`. */
export interface ImageArchiveLayer {
  /** The blob's digest; names its entry (`<hex>/layer.tar`). */
  digest: string;
  /** The blob's size in bytes. */
  size: number;
  /**
   * The blob (plain tar, gzip or zstd). Absent: an empty entry stands in.
   * `/images/load` opens a layer's entry only when the daemon lacks the chain of
   * layers up to it, so a caller leaves out exactly the bottom layers the daemon
   * is known to hold; if it does not after all, the load fails on the empty
   * entry's diff_id instead of building a wrong image.
   */
  file?: string;
}

export interface WriteImageArchiveOptions {
  /** The config's bytes, as the image ID is their digest. */
  config: Uint8Array;
  /** Their digest (computed when absent). */
  configDigest?: string;
  layers: readonly ImageArchiveLayer[];
  /** `RepoTags` of the loaded image. */
  tags?: readonly string[];
  signal?: AbortSignal;
}

/**
 * The docker-archive (`docker save` form before Engine 25) of one image:
 * `<config hex>.json`, `<layer hex>/layer.tar` per distinct layer blob, and
 * `manifest.json`. Every Engine from 20.10 on loads it with `/images/load`.
 */
export function writeImageArchive(options: WriteImageArchiveOptions): Readable {
  const hexOf = (digest: string, what: string): string => {
    try {
      return parseDigest(digest).hex;
    } catch (err) {
      throw new ImageBackendError(`writing the image archive: ${what}: ${messageOf(err)}`, { cause: err });
    }
  };
  const configName = `${hexOf(options.configDigest ?? sha256(options.config), 'config')}.json`;
  const names = options.layers.map((l, i) => `${hexOf(l.digest, `layer ${i}`)}/layer.tar`);
  // one entry per blob: with the bytes when any layer listing it carries them
  const byName = new Map<string, ImageArchiveLayer>();
  for (const [i, layer] of options.layers.entries()) {
    const seen = byName.get(names[i]!);
    if (seen === undefined || (seen.file === undefined && layer.file !== undefined)) byName.set(names[i]!, layer);
  }
  const base = { type: 'file', mode: 0o644, uid: 0, gid: 0 } as const;
  const entries: LayerEntry[] = [
    { ...base, path: configName, content: options.config },
    ...[...byName].map(([name, layer]): LayerEntry => (layer.file === undefined ? { ...base, path: name, size: 0 } : { ...base, path: name, size: layer.size, source: layer.file })),
    { ...base, path: 'manifest.json', content: Buffer.from(JSON.stringify([{ Config: configName, RepoTags: options.tags ?? null, Layers: names }])) },
  ];
  // The tar is written into `inner`; `out` is what the caller reads, and fails with this module's message.
  const inner = new PassThrough();
  const out = new PassThrough();
  out.on('close', () => inner.destroy());
  inner.pipe(out);
  writeLayer(entries, inner, { compression: 'none', sort: false, mtime: new Date(0), ...(options.signal ? { signal: options.signal } : {}) }).catch((err: unknown) => {
    out.destroy(options.signal?.aborted ? (err as Error) : new ImageBackendError(`writing the image archive: ${messageOf(err)}`, { cause: err }));
  });
  return out;
}
