/**
 * A minimal ustar writer (regular files only, short names) with which this
 * package's tests build OCI tarballs. The archives sent to the Docker Engine
 * are image-backend-kit's `writeImageArchive`.
 */
import type { Readable } from 'node:stream';

export interface TarFileEntry {
  name: string;
  /** Either the bytes, or a size and a function opening them. */
  data?: Buffer;
  size?: number;
  open?: () => Readable | AsyncIterable<Uint8Array>;
}

function header(name: string, size: number): Buffer {
  if (Buffer.byteLength(name) > 100) throw new Error(`tar entry name too long: ${name}`);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100, 8, 'latin1');
  h.write('0000000\0', 108, 8, 'latin1');
  h.write('0000000\0', 116, 8, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 12, 'latin1');
  h.write('00000000000\0', 136, 12, 'latin1');
  h.write('        ', 148, 8, 'latin1');
  h.write('0', 156, 1, 'latin1');
  h.write('ustar\0', 257, 6, 'latin1');
  h.write('00', 263, 2, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8, 'latin1');
  return h;
}

/** The tar stream of `entries`, in order, with the end-of-archive blocks. */
export async function* tarEntries(entries: readonly TarFileEntry[]): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    const size = entry.data?.length ?? entry.size ?? 0;
    yield header(entry.name, size);
    let written = 0;
    if (entry.data) {
      yield entry.data;
      written = entry.data.length;
    } else if (entry.open) {
      for await (const chunk of entry.open()) {
        const b = Buffer.from(chunk as Uint8Array);
        written += b.length;
        yield b;
      }
    }
    if (written !== size) throw new Error(`tar entry ${entry.name}: expected ${size} bytes, got ${written}`);
    const pad = (512 - (size % 512)) % 512;
    if (pad > 0) yield Buffer.alloc(pad);
  }
  yield Buffer.alloc(1024);
}
