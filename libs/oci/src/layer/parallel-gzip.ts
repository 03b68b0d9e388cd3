import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import { constants, crc32, deflateRaw, type ZlibOptions } from 'node:zlib';

const deflateRawAsync = promisify<Buffer, ZlibOptions, Buffer>(deflateRaw);

/** Input bytes per independently compressed block. */
export const GZIP_BLOCK_SIZE = 1 << 20;
const WINDOW = 32 << 10;

/**
 * gzip in parallel, the way pigz does it: the input is cut into 1 MiB blocks,
 * each deflated on zlib's thread pool with the previous 32 KiB as its
 * dictionary and ended with a sync flush, and the pieces are joined into one
 * gzip member with the CRC-32 of the whole input. Compression is within a
 * fraction of a percent of a single stream.
 *
 * The output depends only on the input bytes, the level and the block size —
 * not on how many blocks run at once or how the input was chunked — so layers
 * stay reproducible across machines (with the same zlib).
 */
export async function* parallelGzip(input: AsyncIterable<Uint8Array>, level = 6, concurrency = Math.max(2, availableParallelism())): AsyncGenerator<Buffer> {
  // RFC 1952 header: no name, no mtime, XFL as zlib sets it, OS = Unix.
  const xfl = level >= 9 ? 2 : level === 1 ? 4 : 0;
  yield Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0x03]);

  let crc = 0;
  let length = 0;
  let window: Buffer = Buffer.alloc(0);
  const inFlight: Promise<Buffer>[] = [];
  let held: Buffer | undefined; // one block of lookahead: the last block is finished differently
  let partial: Buffer[] = [];
  let partialLength = 0;

  const start = (block: Buffer, last: boolean): void => {
    crc = crc32(block, crc);
    length = (length + block.length) % 2 ** 32;
    const options: ZlibOptions = { level, finishFlush: last ? constants.Z_FINISH : constants.Z_SYNC_FLUSH };
    if (window.length > 0) options.dictionary = window;
    const piece = deflateRawAsync(block, options);
    piece.catch(() => undefined); // observed when its turn comes; avoids an unhandled rejection meanwhile
    inFlight.push(piece);
    window = block.length >= WINDOW ? block.subarray(block.length - WINDOW) : Buffer.concat([window, block]).subarray(-WINDOW);
  };

  const blocks = async function* (): AsyncGenerator<Buffer> {
    for await (const raw of input) {
      let chunk = Buffer.from(raw.buffer, raw.byteOffset, raw.length);
      if (partialLength === 0 && chunk.length === GZIP_BLOCK_SIZE) {
        yield chunk; // the common case: no copy
        continue;
      }
      while (chunk.length > 0) {
        const take = Math.min(chunk.length, GZIP_BLOCK_SIZE - partialLength);
        partial.push(chunk.subarray(0, take));
        partialLength += take;
        chunk = chunk.subarray(take);
        if (partialLength === GZIP_BLOCK_SIZE) {
          yield Buffer.concat(partial);
          partial = [];
          partialLength = 0;
        }
      }
    }
    if (partialLength > 0) yield Buffer.concat(partial);
  };

  for await (const block of blocks()) {
    if (held) start(held, false);
    held = block;
    while (inFlight.length >= concurrency) yield await inFlight.shift()!;
  }
  start(held ?? Buffer.alloc(0), true);
  while (inFlight.length > 0) yield await inFlight.shift()!;

  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(length >>> 0, 4);
  yield trailer;
}
