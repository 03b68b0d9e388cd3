import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gunzipSync, zstdDecompressSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GZIP_BLOCK_SIZE, parallelGzip, parallelZstd, ZSTD_BLOCK_SIZE } from './parallel-compress.ts';

async function compressWith(codec: typeof parallelGzip, data: Buffer, chunk: number, concurrency: number): Promise<Buffer> {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let i = 0; i < data.length; i += chunk) yield data.subarray(i, i + chunk);
  }
  const out: Buffer[] = [];
  for await (const piece of codec(chunks(), undefined, concurrency)) out.push(piece);
  return Buffer.concat(out);
}
const gzipOf = (data: Buffer, chunk: number, concurrency: number) => compressWith(parallelGzip, data, chunk, concurrency);
const zstdOf = (data: Buffer, chunk: number, concurrency: number) => compressWith(parallelZstd, data, chunk, concurrency);

describe('parallelGzip', () => {
  const text = Buffer.from(Array.from({ length: 200_000 }, (_, i) => `line ${i % 977} of some text\n`).join(''));
  const data = Buffer.concat([text, randomBytes(GZIP_BLOCK_SIZE + 123), text.subarray(0, 5000)]);

  it('round-trips through gunzip and gzip -t', async () => {
    const gz = await gzipOf(data, 64 << 10, 2);
    expect(gunzipSync(gz).equals(data)).toBe(true);
    execFileSync('gzip', ['-t'], { input: gz });
    expect(gz.length).toBeLessThan(data.length);
  });

  it('gives the same bytes whatever the input chunking and concurrency', async () => {
    const a = await gzipOf(data, GZIP_BLOCK_SIZE, 2);
    const b = await gzipOf(data, 12_345, 1);
    const c = await gzipOf(data, 3 * GZIP_BLOCK_SIZE, 4);
    expect(b.equals(a)).toBe(true);
    expect(c.equals(a)).toBe(true);
  });

  it('handles empty and tiny input', async () => {
    expect(gunzipSync(await gzipOf(Buffer.alloc(0), 1, 2)).length).toBe(0);
    expect(gunzipSync(await gzipOf(Buffer.from('x'), 1, 2)).toString()).toBe('x');
  });
});

describe('parallelZstd', () => {
  const text = Buffer.from(Array.from({ length: 600_000 }, (_, i) => `row ${i % 1013} of a zstd test\n`).join(''));
  const data = Buffer.concat([text, randomBytes(ZSTD_BLOCK_SIZE / 2), text.subarray(0, 777)]);

  it('round-trips through libzstd, as frames of a single stream', async () => {
    const zst = await zstdOf(data, 1 << 20, 2);
    expect(data.length).toBeGreaterThan(2 * ZSTD_BLOCK_SIZE);
    expect(zstdDecompressSync(zst).equals(data)).toBe(true);
  });

  it('gives the same bytes whatever the input chunking and concurrency, and handles empty input', async () => {
    expect((await zstdOf(data, 99_999, 1)).equals(await zstdOf(data, ZSTD_BLOCK_SIZE, 3))).toBe(true);
    expect(zstdDecompressSync(await zstdOf(Buffer.alloc(0), 1, 2)).length).toBe(0);
  });
});
