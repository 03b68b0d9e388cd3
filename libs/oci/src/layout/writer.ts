import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, digester, parseDigest, sha256 } from '../digest.ts';
import type { LayerEntry } from '../layer/entry.ts';
import { type LayerWriteResult, writeLayer, type WriteLayerOptions } from '../layer/writer.ts';
import { MediaType } from '../media-types.ts';
import { canonicalJson, type Descriptor, type ImageIndex, REF_NAME_ANNOTATION } from '../model.ts';
import { LayoutError, OciLayout } from './layout.ts';

export interface CreateLayoutOptions {
  /**
   * Start from what `dir` already holds (its blobs are hard-linked into the new
   * layout, its index entries kept except those whose ref name is written
   * again), as `skopeo copy` into an existing layout does. Default false: the
   * new layout replaces `dir`.
   */
  keepExisting?: boolean;
}

/**
 * Writes an OCI image layout atomically: everything goes into a temporary
 * sibling directory, and `commit()` renames it into place. Readers of `dir`
 * see the old layout or the new one, never a mix. Blobs are named by the
 * sha256 of what was written; JSON is written as canonicalJson. Leave blobs
 * out to write a sparse layout.
 */
export class OciLayoutWriter {
  readonly dir: string;
  /** The staging directory; renamed to `dir` on commit. */
  readonly stage: string;
  private readonly manifests: Descriptor[] = [];
  private done = false;

  private constructor(dir: string, stage: string) {
    this.dir = dir;
    this.stage = stage;
  }

  static async create(dir: string, options: CreateLayoutOptions = {}): Promise<OciLayoutWriter> {
    const stage = join(dirname(dir), `.${basename(dir)}.tmp-${randomBytes(6).toString('hex')}`);
    const writer = new OciLayoutWriter(dir, stage);
    try {
      await mkdir(join(stage, 'blobs', 'sha256'), { recursive: true });
      await writeFile(join(stage, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
      if (options.keepExisting && (await OciLayout.exists(dir))) {
        const old = await OciLayout.open(dir);
        writer.manifests.push(...old.index.manifests);
        await linkTree(join(dir, 'blobs'), join(stage, 'blobs'));
      }
    } catch (cause) {
      await rm(stage, { recursive: true, force: true });
      throw new LayoutError(`creating OCI layout ${dir}: ${(cause as Error).message}`, { cause });
    }
    return writer;
  }

  private blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.stage, 'blobs', algorithm, hex);
  }

  private tempPath(): string {
    return join(this.stage, 'blobs', `.incoming-${randomBytes(6).toString('hex')}`);
  }

  /** Store bytes as a blob. */
  async putBytes(bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(bytes);
    const path = this.blobPath(digest);
    if (!(await exists(path))) {
      const tmp = this.tempPath();
      await writeFile(tmp, bytes);
      await rename(tmp, path);
    }
    return { mediaType, digest, size: bytes.length };
  }

  /** Store a JSON document (manifest, config, index) in canonical form. */
  async putJson(value: unknown, mediaType: string): Promise<Descriptor> {
    return this.putBytes(Buffer.from(canonicalJson(value)), mediaType);
  }

  /**
   * Store a blob from a file or stream. With `expected`, the content must have
   * that digest (and size); the blob is then stored under it.
   */
  async putBlob(source: string | Readable, mediaType: string, expected?: Pick<Descriptor, 'digest' | 'size'>): Promise<Descriptor> {
    const { algorithm } = expected ? parseDigest(expected.digest) : { algorithm: 'sha256' };
    const d = digester(algorithm);
    let size = 0;
    const tmp = this.tempPath();
    const input = typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source;
    try {
      await pipeline(
        input,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            d.hash.update(chunk);
            size += chunk.length;
            yield chunk;
          }
        },
        createWriteStream(tmp),
      );
    } catch (cause) {
      await rm(tmp, { force: true });
      throw new LayoutError(`writing blob to ${this.dir}: ${(cause as Error).message}`, { cause });
    }
    const digest = d.digest();
    if (expected && (digest !== expected.digest || size !== expected.size)) {
      await rm(tmp, { force: true });
      throw new LayoutError(`writing blob ${expected.digest} to ${this.dir}: content has digest ${digest} and ${size} bytes (expected ${expected.size})`);
    }
    await rename(tmp, this.blobPath(digest));
    return { mediaType, digest, size };
  }

  /** Write a layer straight into the layout (see writeLayer). */
  async writeLayer(entries: Iterable<LayerEntry>, options: WriteLayerOptions = {}): Promise<LayerWriteResult> {
    const tmp = this.tempPath();
    try {
      const result = await writeLayer(entries, tmp, options);
      await rename(tmp, this.blobPath(result.digest));
      return result;
    } catch (cause) {
      await rm(tmp, { force: true });
      throw cause;
    }
  }

  /** Whether the staged layout already holds a blob (also one kept from the existing layout). */
  async hasBlob(digest: Digest): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  /**
   * List a manifest (or index) in index.json, optionally under a ref name; an
   * earlier entry with the same ref name is dropped.
   */
  addManifest(descriptor: Descriptor, refName?: string): void {
    const entry: Descriptor = { ...descriptor };
    if (refName !== undefined) {
      entry.annotations = { ...descriptor.annotations, [REF_NAME_ANNOTATION]: refName };
      for (let i = this.manifests.length - 1; i >= 0; i--) {
        if (this.manifests[i]!.annotations?.[REF_NAME_ANNOTATION] === refName) this.manifests.splice(i, 1);
      }
    }
    this.manifests.push(entry);
  }

  /** Write index.json and move the layout into place. */
  async commit(): Promise<void> {
    if (this.done) throw new LayoutError(`committing OCI layout ${this.dir}: already committed or aborted`);
    this.done = true;
    const index: ImageIndex = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: this.manifests };
    try {
      await writeFile(join(this.stage, 'index.json'), canonicalJson(index));
      for (const name of await readdir(join(this.stage, 'blobs'))) {
        if (name.startsWith('.incoming-')) await rm(join(this.stage, 'blobs', name), { force: true });
      }
      await swapInto(this.stage, this.dir);
    } catch (cause) {
      await rm(this.stage, { recursive: true, force: true });
      throw new LayoutError(`committing OCI layout ${this.dir}: ${(cause as Error).message}`, { cause });
    }
  }

  /** Drop everything staged; `dir` stays as it was. */
  async abort(): Promise<void> {
    this.done = true;
    await rm(this.stage, { recursive: true, force: true });
  }
}

/**
 * Move `stage` to `dir`. A new `dir` appears in one rename. An existing one is
 * renamed aside first and removed after, so `dir` is missing only between two
 * renames and never holds a partial layout.
 */
async function swapInto(stage: string, dir: string): Promise<void> {
  try {
    await rename(stage, dir);
    return;
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw cause;
  }
  const aside = `${stage}.old`;
  await rename(dir, aside);
  try {
    await rename(stage, dir);
  } catch (cause) {
    await rename(aside, dir);
    throw cause;
  }
  await rm(aside, { recursive: true, force: true });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Recreate `from` under `to` with hardlinks (copies across filesystems). */
async function linkTree(from: string, to: string): Promise<void> {
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const src = join(from, entry.name);
    const dst = join(to, entry.name);
    if (entry.isDirectory()) {
      await mkdir(dst, { recursive: true });
      await linkTree(src, dst);
    } else if (entry.isFile()) {
      if (await exists(dst)) continue;
      try {
        await link(src, dst);
      } catch {
        await copyFile(src, dst);
      }
    }
  }
}
