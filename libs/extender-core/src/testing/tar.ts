/**
 * Small tar helpers for the fake backend and the contract kit: write a
 * reproducible uncompressed layer from in-memory files, and list a layer blob
 * (plain or gzip) as path → content.
 */
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { extract, pack } from 'tar-stream';
import { MediaType, NORMALIZED_LAYER_TIME, type Digest } from '@cnb-extender/oci';
import type { BlobSource, LayerDescription } from '../backend.ts';

export interface LayerFile {
  /** Layer path without a leading `/` (`contract/args`). */
  path: string;
  content: Uint8Array | string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** Build an uncompressed tar of `files` (parent directories included, sorted, fixed mtime, numeric owners). */
export async function tarBytes(files: readonly LayerFile[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of p) chunks.push(chunk as Buffer);
  })();
  const dirs = new Set<string>();
  for (const file of files) {
    const parts = file.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  const entries: { name: string; file?: LayerFile }[] = [
    ...[...dirs].map((name) => ({ name })),
    ...files.map((file) => ({ name: file.path, file })),
  ].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const entry of entries) {
    if (!entry.file) {
      p.entry({ name: `${entry.name}/`, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: NORMALIZED_LAYER_TIME });
      continue;
    }
    const content = typeof entry.file.content === 'string' ? Buffer.from(entry.file.content) : Buffer.from(entry.file.content);
    p.entry(
      { name: entry.name, type: 'file', mode: entry.file.mode ?? 0o644, uid: entry.file.uid ?? 0, gid: entry.file.gid ?? 0, mtime: NORMALIZED_LAYER_TIME, size: content.length },
      content,
    );
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A layer description for an uncompressed tar held in a file. */
export function plainLayer(bytes: Buffer, path: string): LayerDescription {
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
  return { descriptor: { mediaType: MediaType.ociLayer, digest, size: bytes.length }, diffId: digest, blob: { kind: 'file', path } };
}

async function openSource(source: BlobSource): Promise<Readable> {
  if (source.kind === 'file') return createReadStream(source.path);
  return await source.open();
}

/** Every regular file of a layer blob (plain or gzip tar), path without leading `/` → content. */
export async function readLayerFiles(source: BlobSource): Promise<Map<string, Buffer>> {
  const raw = await openSource(source);
  const chunks: Buffer[] = [];
  for await (const chunk of raw) chunks.push(Buffer.from(chunk as Buffer));
  let bytes = Buffer.concat(chunks);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) {
    const out: Buffer[] = [];
    await pipeline(Readable.from([bytes]), createGunzip(), async function* (source) {
      for await (const c of source) out.push(c as Buffer);
    });
    bytes = Buffer.concat(out);
  }
  const files = new Map<string, Buffer>();
  const ex = extract();
  const finished = new Promise<void>((resolve, reject) => {
    ex.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: unknown) => parts.push(c as Buffer));
      stream.on('end', () => {
        if (header.type === 'file') files.set(header.name.replace(/^\.?\//, ''), Buffer.concat(parts));
        next();
      });
      stream.resume();
    });
    ex.on('finish', resolve);
    ex.on('error', reject);
  });
  ex.end(bytes);
  await finished;
  return files;
}

/** Every entry path of a layer blob (files, directories, whiteouts), without leading `/`. */
export async function readLayerPaths(source: BlobSource): Promise<string[]> {
  return [...(await readLayerFiles(source)).keys()];
}
