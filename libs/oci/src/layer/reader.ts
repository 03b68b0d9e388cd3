import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { createGunzip, createZstdDecompress } from 'node:zlib';
import type { LayerCompression } from '../media-types.ts';
import { LayerError, type LayerEntryType } from './entry.ts';
import { BLOCK_SIZE, decodeHeader, decodePax, isZeroBlock, paddingFor, TarFormatError, TypeFlag } from './tar-format.ts';

/** Where layer bytes come from: a file, or a function that opens a fresh stream each time it is called. */
export type LayerSource = string | (() => Readable | AsyncIterable<Uint8Array>);

export function openLayerSource(source: LayerSource): AsyncIterable<Uint8Array> {
  return typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source();
}

/** The compression whose magic bytes start `head`: gzip 1f 8b, zstd 28 b5 2f fd, anything else plain tar. */
export function detectCompression(head: Uint8Array): LayerCompression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head[0] === 0x28 && head[1] === 0xb5 && head[2] === 0x2f && head[3] === 0xfd) return 'zstd';
  return 'none';
}

/** The uncompressed tar bytes of a layer, whatever its compression (detected from magic bytes, not the media type). */
export async function decompressLayer(input: AsyncIterable<Uint8Array>): Promise<{ compression: LayerCompression; tar: AsyncIterable<Buffer> }> {
  const it = input[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let headLength = 0;
  let done = false;
  while (headLength < 4) {
    const r = await it.next();
    if (r.done) {
      done = true;
      break;
    }
    head.push(Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length));
    headLength += r.value.length;
  }
  const first = Buffer.concat(head);
  const compression = detectCompression(first);
  async function* all(): AsyncGenerator<Buffer> {
    if (first.length) yield first;
    if (done) return;
    for (;;) {
      const r = await it.next();
      if (r.done) return;
      yield Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
    }
  }
  if (compression === 'none') return { compression, tar: all() };
  let decompressor: NodeJS.ReadWriteStream;
  if (compression === 'gzip') decompressor = createGunzip({ chunkSize: 128 << 10 });
  else {
    if (typeof createZstdDecompress !== 'function') throw new LayerError(`reading a zstd layer: this Node.js (${process.version}) has no zstd in node:zlib`);
    decompressor = createZstdDecompress();
  }
  const out = pipeline(Readable.from(all(), { objectMode: false }), decompressor, () => {
    // Errors reach the consumer through the destroyed output stream.
  }) as unknown as Readable;
  return { compression, tar: out };
}

/** One entry of a tar stream as a reader sees it. */
export interface TarEntryHeader {
  /** The name exactly as stored (PAX/GNU long names applied), without a trailing '/'. */
  name: string;
  type: LayerEntryType | 'other';
  /** The raw type flag, for 'other'. */
  typeflag: number;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Seconds since the epoch (may be fractional from PAX). */
  mtime: number;
  linkTarget: string;
  devMajor: number;
  devMinor: number;
  xattrs: Record<string, Buffer> | undefined;
}

export interface TarEntry extends TarEntryHeader {
  /** The entry's bytes; must be consumed before the next entry is asked for, or it is skipped. */
  body(): AsyncIterable<Buffer>;
}

/** Pulls exact byte counts out of a chunk stream. */
class ByteSource {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = Buffer.alloc(0);
  private ended = false;

  constructor(input: AsyncIterable<Uint8Array>) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async pull(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const chunk = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    return true;
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.pull()));
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    return out;
  }

  /** n bytes as they arrive. */
  async *take(n: number): AsyncGenerator<Buffer> {
    while (n > 0) {
      if (this.buf.length === 0 && !(await this.pull())) throw new TarFormatError('tar stream ends inside an entry');
      const out = this.buf.subarray(0, Math.min(n, this.buf.length));
      this.buf = this.buf.subarray(out.length);
      n -= out.length;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    for await (const _ of this.take(n));
  }

  /** Read what is left so an upstream hash sees every byte. */
  async drain(): Promise<void> {
    this.buf = Buffer.alloc(0);
    while (await this.pull()) this.buf = Buffer.alloc(0);
  }
}

const TYPES: Record<number, LayerEntryType> = {
  [TypeFlag.file]: 'file',
  [TypeFlag.oldFile]: 'file',
  [TypeFlag.contiguous]: 'file',
  [TypeFlag.hardlink]: 'hardlink',
  [TypeFlag.symlink]: 'symlink',
  [TypeFlag.charDevice]: 'char-device',
  [TypeFlag.blockDevice]: 'block-device',
  [TypeFlag.directory]: 'directory',
  [TypeFlag.fifo]: 'fifo',
};

/** The extended attributes among PAX records (`SCHILY.xattr.*`, `LIBARCHIVE.xattr.*`). */
function paxXattrs(ext: Map<string, Buffer>): Record<string, Buffer> | undefined {
  let xattrs: Record<string, Buffer> | undefined;
  for (const [key, value] of ext) {
    const m = /^(?:SCHILY|LIBARCHIVE)\.xattr\.(.+)$/.exec(key);
    if (m) (xattrs ??= {})[m[1]!] = value;
  }
  return xattrs;
}

/**
 * The entries of an uncompressed tar stream: ustar, GNU (long names, base-256
 * numbers) and PAX (local and global headers, `SCHILY.xattr.*` /
 * `LIBARCHIVE.xattr.*` attributes, binary values kept as bytes). The whole
 * input is consumed, also after the end-of-archive blocks.
 */
export async function* readTar(input: AsyncIterable<Uint8Array>): AsyncGenerator<TarEntry> {
  const src = new ByteSource(input);
  let global = new Map<string, Buffer>();
  let pax: Map<string, Buffer> | undefined;
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const block = await src.read(BLOCK_SIZE);
    if (block.length === 0) break; // no end-of-archive marker: accept, as GNU tar does with a warning
    if (block.length < BLOCK_SIZE) throw new TarFormatError('tar stream ends inside a header');
    if (isZeroBlock(block)) {
      await src.drain();
      break;
    }
    const h = decodeHeader(block);
    if (h.typeflag === TypeFlag.paxLocal || h.typeflag === TypeFlag.paxGlobal || h.typeflag === TypeFlag.gnuLongName || h.typeflag === TypeFlag.gnuLongLink) {
      const data = await src.read(h.size);
      if (data.length < h.size) throw new TarFormatError('tar stream ends inside an extended header');
      await src.skip(paddingFor(h.size));
      if (h.typeflag === TypeFlag.paxLocal) pax = decodePax(data);
      else if (h.typeflag === TypeFlag.paxGlobal) global = new Map([...global, ...decodePax(data)]);
      else {
        const text = data.toString('utf8').replace(/\0+$/, '');
        if (h.typeflag === TypeFlag.gnuLongName) longName = text;
        else longLink = text;
      }
      continue;
    }
    const ext = pax ? new Map([...global, ...pax]) : global;
    const text = (key: string): string | undefined => ext.get(key)?.toString('utf8');
    const num = (key: string, fallback: number): number => {
      const v = text(key);
      return v === undefined ? fallback : Number(v);
    };
    let name = text('path') ?? longName ?? h.name;
    const linkTarget = text('linkpath') ?? longLink ?? h.linkname;
    const xattrs = paxXattrs(ext);
    const type: LayerEntryType | 'other' = TYPES[h.typeflag] ?? 'other';
    const size = num('size', h.size);
    const slash = name.endsWith('/');
    if (slash && name.length > 1) name = name.replace(/\/+$/, '');
    pax = undefined;
    longName = undefined;
    longLink = undefined;
    const dataSize = type === 'file' || type === 'other' ? size : 0;
    let remaining = dataSize;
    let opened = false;
    const entry: TarEntry = {
      name,
      type: type === 'file' && slash && size === 0 ? 'directory' : type,
      typeflag: h.typeflag,
      mode: h.mode & 0o7777,
      uid: num('uid', h.uid),
      gid: num('gid', h.gid),
      size: dataSize,
      mtime: num('mtime', h.mtime),
      linkTarget,
      devMajor: h.devmajor,
      devMinor: h.devminor,
      xattrs,
      body: () => {
        if (opened) throw new TarFormatError(`body of ${name} read twice`);
        opened = true;
        return (async function* () {
          for await (const chunk of src.take(remaining)) {
            remaining -= chunk.length;
            yield chunk;
          }
        })();
      },
    };
    yield entry;
    // Whatever the consumer did not read is skipped.
    await src.skip(remaining);
    await src.skip(paddingFor(dataSize));
  }
}
