import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { constants, crc32, deflateRaw, type ZlibOptions, type ZstdOptions, zstdCompress } from 'node:zlib';

const deflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);

/** Input bytes per independently compressed gzip block. */
export const GZIP_BLOCK_SIZE = 1 << 20;
/** Input bytes per zstd frame. */
export const ZSTD_BLOCK_SIZE = 8 << 20;
const WINDOW = 32 << 10;

/**
 * Compressed bytes of whole blocks of zeros (sparse files, zero-filled images), per format
 * and level: such a block after 32 KiB of zeros always compresses to the same bytes, so it
 * is compressed once per process. Checking a block costs a memcmp.
 */
const zeroBlocks = new Map<string, Promise<Buffer>>();
let zeros: Buffer | undefined;

function allZero(block: Buffer): boolean {
  zeros ??= Buffer.alloc(ZSTD_BLOCK_SIZE);
  return block.length <= zeros.length && block.equals(zeros.subarray(0, block.length));
}

/** `compress()`, or the bytes it gave before for this key when `reusable` holds. */
function onceForZeros(key: string, reusable: boolean, compress: () => Promise<Buffer>): Promise<Buffer> {
  if (!reusable) return compress();
  let found = zeroBlocks.get(key);
  if (!found) {
    found = compress();
    zeroBlocks.set(key, found);
    found.catch(() => zeroBlocks.delete(key));
  }
  return found;
}

function defaultConcurrency(): number {
  return Math.max(2, availableParallelism());
}

/**
 * Cut `input` into fixed-size blocks (the last may be shorter) and compress
 * them `concurrency` at a time, yielding the results in order. `compress`
 * gets each block, whether it is the last, and the 32 KiB of input before it.
 * Because blocks have a fixed size, the output never depends on how the input
 * was chunked or how many blocks ran at once.
 */
async function* compressBlocks(
  input: AsyncIterable<Uint8Array>,
  blockSize: number,
  concurrency: number,
  compress: (block: Buffer, last: boolean, before: Buffer) => Promise<Buffer>,
): AsyncGenerator<Buffer> {
  const inFlight: Promise<Buffer>[] = [];
  let before: Buffer = Buffer.alloc(0);
  let held: Buffer | undefined; // one block of lookahead: the last block is finished differently

  const start = (block: Buffer, last: boolean): void => {
    const piece = compress(block, last, before);
    piece.catch(() => undefined); // observed when its turn comes; avoids an unhandled rejection meanwhile
    inFlight.push(piece);
    before = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([before, block]).subarray(-WINDOW);
  };

  let partial: Buffer[] = [];
  let partialLength = 0;
  async function* blocks(): AsyncGenerator<Buffer> {
    for await (const raw of input) {
      let chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
      if (partialLength === 0 && chunk.length === blockSize) {
        yield chunk; // the common case: no copy
        continue;
      }
      while (chunk.length > 0) {
        const take = Math.min(chunk.length, blockSize - partialLength);
        partial.push(chunk.subarray(0, take));
        partialLength += take;
        chunk = chunk.subarray(take);
        if (partialLength === blockSize) {
          yield Buffer.concat(partial);
          partial = [];
          partialLength = 0;
        }
      }
    }
    if (partialLength > 0) yield Buffer.concat(partial);
  }

  for await (const block of blocks()) {
    if (held) start(held, false);
    held = block;
    while (inFlight.length >= concurrency) yield await inFlight.shift()!;
  }
  start(held ?? Buffer.alloc(0), true);
  while (inFlight.length > 0) yield await inFlight.shift()!;
}

/**
 * gzip in parallel, the way pigz does it: 1 MiB blocks, each deflated on
 * zlib's thread pool with the previous 32 KiB as its dictionary and ended with
 * a sync flush, joined into one gzip member with the CRC-32 of the whole
 * input. Compression is within a fraction of a percent of a single stream, and
 * the output depends only on the input bytes and the level (not on cores), so
 * layers stay reproducible across machines (with the same zlib).
 */
export async function* parallelGzip(input: AsyncIterable<Uint8Array>, level = 6, concurrency = defaultConcurrency()): AsyncGenerator<Buffer> {
  // RFC 1952 header: no name, no mtime, XFL as zlib sets it, OS = Unix.
  const xfl = level >= 9 ? 2 : level === 1 ? 4 : 0;
  yield Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0x03]);
  let crc = 0;
  let length = 0;
  yield* compressBlocks(input, GZIP_BLOCK_SIZE, concurrency, (block, last, before) => {
    crc = crc32(block, crc);
    length = (length + block.length) % 2 ** 32;
    // one output buffer the size of the block: zlib's default 16 KiB would mean a callback and a copy per 16 KiB
    const options: ZlibOptions = { level, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH, chunkSize: GZIP_BLOCK_SIZE };
    if (before.length > 0) options.dictionary = before;
    // A full block of zeros after a window of zeros: the same bytes every time.
    const reusable = !last && block.length === GZIP_BLOCK_SIZE && before.length === WINDOW && allZero(before) && allZero(block);
    return onceForZeros(`gzip-${level}`, reusable, () => deflateRawAsync(block, options));
  });
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(length >>> 0, 4);
  yield trailer;
}

const zstdCompressAsync = promisify<Buffer, ZstdOptions, Buffer>(zstdCompress);

/**
 * zstd in parallel: 8 MiB blocks compressed as independent frames on zlib's
 * thread pool and concatenated (a zstd stream is a sequence of frames; every
 * decoder reads them as one). Costs about 1% in size against one frame; the
 * output depends only on the input bytes and the level.
 */
export async function* parallelZstd(input: AsyncIterable<Uint8Array>, level = 3, concurrency = defaultConcurrency()): AsyncGenerator<Buffer> {
  // one output buffer the size of the block: zlib's default 16 KiB would mean a callback and a copy per 16 KiB
  const options: ZstdOptions = { chunkSize: ZSTD_BLOCK_SIZE, params: { [constants.ZSTD_c_compressionLevel]: level, [constants.ZSTD_c_checksumFlag]: 1 } };
  // Frames are independent: a full block of zeros always gives the same frame.
  yield* compressBlocks(input, ZSTD_BLOCK_SIZE, concurrency, (block) => onceForZeros(`zstd-${level}`, block.length === ZSTD_BLOCK_SIZE && allZero(block), () => zstdCompressAsync(block, options)));
}
