import { createHash, type Hash } from 'node:crypto';
import { closeSync, createWriteStream, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Transform, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createZstdCompress } from 'node:zlib';
import { digester, type Digest } from '../digest.ts';
import type { Descriptor } from '../model.ts';
import { type LayerCompression, layerMediaType, type MediaTypeFamily } from '../media-types.ts';
import { checkLayerPath, defaultLayerTime, LayerError, type LayerEntry, sortLayerEntries } from './entry.ts';
import { parallelGzip, parallelZstd } from './parallel-compress.ts';
import { BLOCK_SIZE, encodeHeader, type HeaderFields, paddingFor, TypeFlag } from './tar-format.ts';

export interface WriteLayerOptions {
  /** Default gzip. zstd needs a runtime whose zlib has it (Node ≥ 22.15 / 23.8). */
  compression?: LayerCompression;
  /** gzip 1–9 (default 6, as `gzip -6`), zstd 1–22 (default 3). */
  level?: number;
  /** Time written for every entry (default: defaultLayerTime(), from SOURCE_DATE_EPOCH or 1980-01-01T00:00:01Z). */
  mtime?: Date;
  /** Put entries into layer order first (default true). With false, the caller's order is kept. */
  sort?: boolean;
  /** Family of the media type in the returned descriptor (default 'oci'). */
  family?: MediaTypeFamily;
  /** Blocks compressed at once (default: the machine's cores, at least 2). The bytes do not depend on it. */
  workers?: number;
  /**
   * Regular files whose sha256 the caller wants, computed from the same read that
   * puts their bytes into the layer (a snapshot's racy entries). Returned in `contentHashes`.
   */
  hashContent?: (entry: LayerEntry) => boolean;
  signal?: AbortSignal;
}

export interface LayerWriteResult {
  /** sha256 of the uncompressed tar (what the image config lists in rootfs.diff_ids). */
  diffId: Digest;
  /** sha256 of the bytes written (the blob digest). */
  digest: Digest;
  /** Bytes written. */
  size: number;
  uncompressedSize: number;
  compression: LayerCompression;
  mediaType: string;
  /** The layer's descriptor for a manifest. */
  descriptor: Descriptor;
  entryCount: number;
  /** Layer path → sha256 (hex) of the bytes written for it, for the files `hashContent` chose. */
  contentHashes: Map<string, string>;
}

/** Bytes handed downstream at a time: headers and small files are packed together. */
const CHUNK_SIZE = 1 << 20;
/** Files up to this size are read with one blocking read straight into the chunk (cheaper than three thread-pool trips). */
const SYNC_READ_LIMIT = 256 << 10;

/**
 * Write a reproducible layer: a tar stream of `entries` (POSIX ustar, PAX where
 * needed, numeric owners, every time set to `mtime`), compressed, with its
 * diffID and blob digest computed in the same pass. Nothing is buffered beyond
 * a few 1 MiB chunks. `destination` is a file path or a stream (ended when done).
 */
export async function writeLayer(
  entries: Iterable<LayerEntry>,
  destination: string | Writable,
  options: WriteLayerOptions = {},
): Promise<LayerWriteResult> {
  const compression = options.compression ?? 'gzip';
  const compress = compressor(compression, options.level, options.workers);
  const list = options.sort === false ? [...entries] : sortLayerEntries([...entries]);
  const mtime = Math.floor((options.mtime ?? defaultLayerTime()).getTime() / 1000);
  const diff = digester();
  const blob = digester();
  const counts = { tar: 0, blob: 0 };

  const contentHashes = new Map<string, string>();
  const hashing = options.hashContent ? { want: options.hashContent, found: contentHashes } : undefined;
  // The generator itself is the source: its 1 MiB chunks reach the compressor as they are (a
  // byte-mode Readable would hand on whatever it buffered, joined into one copy).
  const tar = tarChunks(list, mtime, diff.hash, counts, hashing);
  const tap = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      // Uncompressed, the blob is the tar: its digest is the diffID, hashed once.
      if (compression !== 'none') blob.hash.update(chunk);
      counts.blob += chunk.length;
      callback(null, chunk);
    },
  });
  const out = typeof destination === 'string' ? createWriteStream(destination) : destination;
  try {
    // pipeline's typings cannot express a list of stages built at run time.
    const run = pipeline as unknown as (streams: unknown[], options: { signal?: AbortSignal }) => Promise<void>;
    await run(compress ? [tar, compress, tap, out] : [tar, tap, out], options.signal ? { signal: options.signal } : {});
  } catch (cause) {
    if (cause instanceof LayerError) throw cause;
    const where = typeof destination === 'string' ? ` to ${destination}` : '';
    throw new LayerError(`writing layer${where}: ${(cause as Error).message}`, { cause });
  }
  const diffId = diff.digest();
  const digest = compression === 'none' ? diffId : blob.digest();
  const mediaType = layerMediaType(options.family ?? 'oci', compression);
  return {
    diffId,
    digest,
    size: counts.blob,
    uncompressedSize: counts.tar,
    compression,
    mediaType,
    descriptor: { mediaType, digest, size: counts.blob },
    entryCount: list.length,
    contentHashes,
  };
}

type Stage = (source: AsyncIterable<Buffer>) => AsyncIterable<Buffer>;

function compressor(compression: LayerCompression, level: number | undefined, workers: number | undefined): Stage | undefined {
  if (workers !== undefined && (!Number.isSafeInteger(workers) || workers < 1)) throw new LayerError(`writing a layer: ${workers} compression workers (must be a whole number ≥ 1)`);
  switch (compression) {
    case 'gzip':
      return (source) => parallelGzip(source, level ?? 6, workers);
    case 'zstd':
      if (typeof createZstdCompress !== 'function') {
        throw new LayerError(`writing a zstd layer: this Node.js (${process.version}) has no zstd in node:zlib`);
      }
      return (source) => parallelZstd(source, level ?? 3, workers);
    case 'none':
      return undefined;
  }
}

const TYPEFLAGS: Record<LayerEntry['type'], number> = {
  file: TypeFlag.file,
  directory: TypeFlag.directory,
  symlink: TypeFlag.symlink,
  hardlink: TypeFlag.hardlink,
  fifo: TypeFlag.fifo,
  'char-device': TypeFlag.charDevice,
  'block-device': TypeFlag.blockDevice,
};

interface ContentHashing {
  want: (entry: LayerEntry) => boolean;
  found: Map<string, string>;
}

async function* tarChunks(
  entries: LayerEntry[],
  mtime: number,
  diffHash: { update(data: Uint8Array): unknown },
  counts: { tar: number },
  hashing: ContentHashing | undefined,
): AsyncGenerator<Buffer> {
  const out = new ChunkPacker(diffHash, counts);
  const seenPaths = new Set<string>();
  const firstOfInode = new Map<string, string>();
  for (const entry of entries) {
    checkLayerPath(entry.path);
    if (seenPaths.has(entry.path)) throw new LayerError(`writing layer: ${entry.path} appears twice`);
    seenPaths.add(entry.path);
    const { type, linkname } = entryKind(entry, firstOfInode);
    const size = type === 'file' ? fileSize(entry) : 0;
    yield* out.put(encodeHeader(headerFields(entry, type, linkname, size, mtime), entry.xattrs));
    // The bytes written for a file are what its content hash is taken of: one read for both.
    const content = type === 'file' && hashing?.want(entry) ? createHash('sha256') : undefined;
    if (type === 'hardlink' && hashing?.want(entry)) {
      const first = hashing.found.get(linkname);
      if (first !== undefined) hashing.found.set(entry.path, first);
    }
    if (size === 0) {
      if (content) hashing!.found.set(entry.path, content.digest('hex'));
      continue;
    }

    if (entry.content) {
      content?.update(entry.content);
      yield* out.put(entry.content);
    } else if (size <= SYNC_READ_LIMIT && size <= CHUNK_SIZE - out.used) {
      yield* out.readSmallFile(entry.source!, size, entry.path, content);
    } else {
      yield* out.readLargeFile(entry.source!, size, entry.path, content);
    }
    if (content) hashing!.found.set(entry.path, content.digest('hex'));
    yield* out.zeros(paddingFor(size));
  }
  yield* out.zeros(2 * BLOCK_SIZE);
  if (out.used > 0) yield out.flush();
}

/**
 * The entry's type in the tar and its link name: a file whose inode was already
 * written under another path becomes a hardlink to that first path.
 */
function entryKind(entry: LayerEntry, firstOfInode: Map<string, string>): { type: LayerEntry['type']; linkname: string } {
  let type = entry.type;
  let linkname = entry.linkTarget ?? '';
  if (type === 'file' && entry.inode !== undefined) {
    const first = firstOfInode.get(entry.inode);
    if (first === undefined) firstOfInode.set(entry.inode, entry.path);
    else {
      type = 'hardlink';
      linkname = first;
    }
  }
  if ((type === 'symlink' || type === 'hardlink') && !linkname) throw new LayerError(`writing layer: ${type} ${entry.path} has no target`);
  if (type === 'hardlink') checkLayerPath(linkname);
  return { type, linkname };
}

function headerFields(entry: LayerEntry, type: LayerEntry['type'], linkname: string, size: number, mtime: number): HeaderFields {
  return {
    name: type === 'directory' ? `${entry.path}/` : entry.path,
    mode: entry.mode,
    uid: entry.uid,
    gid: entry.gid,
    size,
    mtime,
    typeflag: TYPEFLAGS[type],
    linkname,
    devmajor: entry.devMajor ?? 0,
    devminor: entry.devMinor ?? 0,
  };
}

/**
 * Packs the tar stream's bytes into CHUNK_SIZE chunks; each full chunk is
 * hashed into the diffID, counted and handed downstream.
 */
class ChunkPacker {
  chunk = Buffer.allocUnsafe(CHUNK_SIZE);
  used = 0;
  readonly #diffHash: { update(data: Uint8Array): unknown };
  readonly #counts: { tar: number };

  constructor(diffHash: { update(data: Uint8Array): unknown }, counts: { tar: number }) {
    this.#diffHash = diffHash;
    this.#counts = counts;
  }

  /** Hand the current chunk downstream (hashing it) and start a new one. */
  flush(): Buffer {
    const full = this.chunk.subarray(0, this.used);
    this.#diffHash.update(full);
    this.#counts.tar += this.used;
    this.chunk = Buffer.allocUnsafe(CHUNK_SIZE);
    this.used = 0;
    return full;
  }

  *put(bytes: Uint8Array): Generator<Buffer> {
    let at = 0;
    while (at < bytes.length) {
      const n = Math.min(bytes.length - at, CHUNK_SIZE - this.used);
      this.chunk.set(bytes.subarray(at, at + n), this.used);
      this.used += n;
      at += n;
      if (this.used === CHUNK_SIZE) yield this.flush();
    }
  }

  *zeros(count: number): Generator<Buffer> {
    while (count > 0) {
      const n = Math.min(count, CHUNK_SIZE - this.used);
      this.chunk.fill(0, this.used, this.used + n);
      this.used += n;
      count -= n;
      if (this.used === CHUNK_SIZE) yield this.flush();
    }
  }

  /** A file that fits into the current chunk, with one blocking read straight into it. */
  *readSmallFile(source: string, size: number, path: string, content: Hash | undefined): Generator<Buffer> {
    const at = this.used;
    this.used += readSmallFile(source, this.chunk, this.used, size, path);
    content?.update(this.chunk.subarray(at, this.used));
    if (this.used === CHUNK_SIZE) yield this.flush();
  }

  async *readLargeFile(source: string, size: number, path: string, content: Hash | undefined): AsyncGenerator<Buffer> {
    const handle = await open(source, 'r').catch((cause: Error) => {
      throw new LayerError(`writing layer: reading ${source} for ${path}: ${cause.message}`, { cause });
    });
    try {
      let remaining = size;
      while (remaining > 0) {
        const want = Math.min(remaining, CHUNK_SIZE - this.used);
        const { bytesRead } = await handle.read(this.chunk, this.used, want, size - remaining);
        if (bytesRead === 0) throw changedSize(source, path, size);
        content?.update(this.chunk.subarray(this.used, this.used + bytesRead));
        this.used += bytesRead;
        remaining -= bytesRead;
        if (this.used === CHUNK_SIZE) yield this.flush();
      }
      const probe = await handle.read(Buffer.allocUnsafe(1), 0, 1, size);
      if (probe.bytesRead !== 0) throw changedSize(source, path, size);
    } finally {
      await handle.close();
    }
  }
}

function fileSize(entry: LayerEntry): number {
  if (entry.content) {
    if (entry.size !== undefined && entry.size !== entry.content.length) {
      throw new LayerError(`writing layer: ${entry.path} says size ${entry.size} but has ${entry.content.length} bytes of content`);
    }
    return entry.content.length;
  }
  if (entry.size === undefined) throw new LayerError(`writing layer: file ${entry.path} has no size`);
  if (entry.size > 0 && entry.source === undefined) throw new LayerError(`writing layer: file ${entry.path} has neither source nor content`);
  return entry.size;
}

function readSmallFile(source: string, into: Buffer, offset: number, size: number, path: string): number {
  let fd: number;
  try {
    fd = openSync(source, 'r');
  } catch (cause) {
    throw new LayerError(`writing layer: reading ${source} for ${path}: ${(cause as Error).message}`, { cause });
  }
  try {
    let got = 0;
    while (got < size) {
      const n = readSync(fd, into, offset + got, size - got, got);
      if (n === 0) throw changedSize(source, path, size);
      got += n;
    }
    // One more byte means the file grew since it was listed.
    if (readSync(fd, Buffer.allocUnsafe(1), 0, 1, size) !== 0) throw changedSize(source, path, size);
    return got;
  } finally {
    closeSync(fd);
  }
}

function changedSize(source: string, path: string, size: number): LayerError {
  return new LayerError(`writing layer: ${source} (for ${path}) changed while being read: expected ${size} bytes`);
}
