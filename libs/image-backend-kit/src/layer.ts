/**
 * New layers as the core wants them: decompressed whatever the tool wrote (plain
 * tar, gzip, zstd), entries under ignore paths dropped, re-compressed as gzip
 * (reproducible: same tar → same bytes), named by digest in a directory of blobs.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { decompressLayer, type Digest } from '@cnb-extender/oci';
import { filterTar, type TarFilterStats } from './tar-filter.ts';

export interface NormalizedLayer {
  /** sha256 of the uncompressed (filtered) tar. */
  diffId: Digest;
  /** sha256 of the gzip blob. */
  digest: Digest;
  size: number;
  /** Where the blob was written: `<blobDir>/<hex>`. */
  path: string;
  /** Paths of entries left out because they are under an ignore path. */
  dropped: string[];
}

export interface NormalizeLayerOptions {
  /** Directory the gzip blob goes to (created when missing). */
  blobDir: string;
  /** Absolute paths whose entries never go into a layer. */
  ignorePaths: readonly string[];
  signal?: AbortSignal;
}

function hashing(hash: ReturnType<typeof createHash>, count?: { size: number }): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      hash.update(chunk);
      if (count) count.size += chunk.length;
      done(null, chunk);
    },
  });
}

/** Read one layer blob (any compression), filter it and write it as gzip. */
export async function normalizeLayer(source: AsyncIterable<Uint8Array> | Readable, options: NormalizeLayerOptions): Promise<NormalizedLayer> {
  await mkdir(options.blobDir, { recursive: true });
  const tmp = join(options.blobDir, `.tmp-${randomBytes(6).toString('hex')}`);
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const count = { size: 0 };
  const stats: TarFilterStats = { kept: 0, dropped: [] };
  try {
    const { tar } = await decompressLayer(source);
    await pipeline(
      Readable.from(filterTar(tar, options.ignorePaths, stats)),
      hashing(diffHash),
      createGzip({ level: 6 }),
      hashing(blobHash, count),
      createWriteStream(tmp),
      ...(options.signal ? [{ signal: options.signal }] : []),
    );
    const hex = blobHash.digest('hex');
    const path = join(options.blobDir, hex);
    await rename(tmp, path);
    return { diffId: `sha256:${diffHash.digest('hex')}`, digest: `sha256:${hex}`, size: count.size, path, dropped: stats.dropped };
  } finally {
    await rm(tmp, { force: true });
  }
}
