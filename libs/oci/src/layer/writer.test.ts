import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zstdDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeTree } from '../testing/tree.ts';
import { makeRichTree, NET_BIND_CAPABILITY } from '../testing/rich-tree.ts';
import { applyLayer } from './apply.ts';
import { compareLayerPaths, defaultLayerTime, type LayerEntry, sortLayerEntries } from './entry.ts';
import { decompressLayer, readTar } from './reader.ts';
import { walkDirectory } from './walk.ts';
import { BLOCK_SIZE, decodeHeader, decodePax, encodeHeader, TypeFlag } from './tar-format.ts';
import { writeLayer } from './writer.ts';

let work: string;
let tree: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'oci-writer-'));
  tree = join(work, 'tree');
  await mkdir(tree);
  await makeRichTree(tree);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

async function listTar(path: string): Promise<{ name: string; type: string; mtime: number; xattrs?: string[] }[]> {
  const { tar } = await decompressLayer((await import('node:fs')).createReadStream(path));
  const out = [];
  for await (const e of readTar(tar)) out.push({ name: e.name, type: e.type, mtime: e.mtime, ...(e.xattrs ? { xattrs: Object.keys(e.xattrs) } : {}) });
  return out;
}

describe('writeLayer', () => {
  it('hands back the sha256 of the files it was asked to hash, from the bytes it wrote (small, large, in memory, empty, hardlinked)', async () => {
    const dir = join(work, 'hash-content');
    await mkdir(dir, { recursive: true });
    const { writeFile } = await import('node:fs/promises');
    const small = Buffer.from('small file\n');
    const large = Buffer.alloc(3 * (1 << 20) + 12345);
    for (let i = 0; i < large.length; i += 4093) large[i] = i % 251;
    await writeFile(join(dir, 'small'), small);
    await writeFile(join(dir, 'large'), large);
    const entries: LayerEntry[] = [
      { path: 'a/small', type: 'file', mode: 0o644, uid: 0, gid: 0, size: small.length, source: join(dir, 'small'), inode: '1:1' },
      { path: 'a/small-link', type: 'file', mode: 0o644, uid: 0, gid: 0, size: small.length, source: join(dir, 'small'), inode: '1:1' },
      { path: 'b/large', type: 'file', mode: 0o644, uid: 0, gid: 0, size: large.length, source: join(dir, 'large') },
      { path: 'c/memory', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('in memory') },
      { path: 'c/empty', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 },
      { path: 'c/not-asked', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('x') },
    ];
    const plain = await writeLayer(entries, join(work, 'hash-plain.tar.gz'));
    const hashed = await writeLayer(entries, join(work, 'hash-hashed.tar.gz'), { hashContent: (e) => e.path !== 'c/not-asked' });
    expect(hashed.digest).toBe(plain.digest);
    expect(plain.contentHashes.size).toBe(0);
    expect(Object.fromEntries(hashed.contentHashes)).toEqual({
      'a/small': sha(small),
      'a/small-link': sha(small),
      'b/large': sha(large),
      'c/memory': sha(Buffer.from('in memory')),
      'c/empty': sha(Buffer.alloc(0)),
    });
  });

  it('writes the same bytes with 1 and 5 compression workers, and refuses 0', async () => {
    const { writeFile } = await import('node:fs/promises');
    const zeros = join(work, 'zeros');
    await writeFile(zeros, Buffer.alloc(20 * (1 << 20)));
    const entries: LayerEntry[] = [{ path: 'zeros', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 20 * (1 << 20), source: zeros }];
    for (const compression of ['gzip', 'zstd'] as const) {
      const one = await writeLayer(entries, join(work, `w1.${compression}`), { compression, workers: 1 });
      const five = await writeLayer(entries, join(work, `w5.${compression}`), { compression, workers: 5 });
      expect(five.digest).toBe(one.digest);
      const { tar } = await decompressLayer((await import('node:fs')).createReadStream(join(work, `w5.${compression}`)));
      const hash = createHash('sha256');
      for await (const chunk of tar) hash.update(chunk as Buffer);
      expect(`sha256:${hash.digest('hex')}`).toBe(one.diffId);
    }
    await expect(writeLayer(entries, join(work, 'w0'), { workers: 0 })).rejects.toThrow(/0 compression workers/);
  });

  it('writes byte-identical layers from the same tree on two runs', async () => {
    const a = await writeLayer(await walkDirectory(tree), join(work, 'a.tar.gz'));
    const b = await writeLayer(await walkDirectory(tree), join(work, 'b.tar.gz'));
    expect(a.digest).toBe(b.digest);
    expect(a.diffId).toBe(b.diffId);
    expect(sha(await readFile(join(work, 'a.tar.gz')))).toBe(sha(await readFile(join(work, 'b.tar.gz'))));
    expect(`sha256:${sha(await readFile(join(work, 'a.tar.gz')))}`).toBe(a.digest);
    expect(a.size).toBe((await stat(join(work, 'a.tar.gz'))).size);
    expect(a.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+gzip');
  });

  it('computes the diffID of the uncompressed tar in the same pass, for gzip, zstd and plain', async () => {
    const entries = await walkDirectory(tree);
    const plain = await writeLayer(entries, join(work, 'p.tar'), { compression: 'none' });
    const gz = await writeLayer(entries, join(work, 'p.tar.gz'), { compression: 'gzip' });
    const zst = await writeLayer(entries, join(work, 'p.tar.zst'), { compression: 'zstd' });
    const tarBytes = await readFile(join(work, 'p.tar'));
    expect(plain.diffId).toBe(`sha256:${sha(tarBytes)}`);
    expect(plain.digest).toBe(plain.diffId);
    expect(gz.diffId).toBe(plain.diffId);
    expect(zst.diffId).toBe(plain.diffId);
    expect(zst.mediaType).toBe('application/vnd.oci.image.layer.v1.tar+zstd');
    expect(sha(zstdDecompressSync(await readFile(join(work, 'p.tar.zst'))))).toBe(sha(tarBytes));
    expect(sha(execFileSync('gzip', ['-dc', join(work, 'p.tar.gz')], { maxBuffer: 1 << 30 }))).toBe(sha(tarBytes));
  });

  it('sets every time to 1980-01-01T00:00:01Z, or SOURCE_DATE_EPOCH when set', async () => {
    expect(defaultLayerTime({}).toISOString()).toBe('1980-01-01T00:00:01.000Z');
    expect(defaultLayerTime({ SOURCE_DATE_EPOCH: '1700000000' }).toISOString()).toBe('2023-11-14T22:13:20.000Z');
    expect(() => defaultLayerTime({ SOURCE_DATE_EPOCH: 'yesterday' })).toThrow(/SOURCE_DATE_EPOCH/);
    await writeLayer(await walkDirectory(tree), join(work, 't.tar'), { compression: 'none', mtime: defaultLayerTime({ SOURCE_DATE_EPOCH: '1700000000' }) });
    const listing = await listTar(join(work, 't.tar'));
    expect(new Set(listing.map((e) => e.mtime))).toEqual(new Set([1700000000]));
  });

  it('writes numeric owners with empty user and group names, PAX records for long names and xattrs', async () => {
    await writeLayer(await walkDirectory(tree), join(work, 'n.tar'), { compression: 'none' });
    const verbose = execFileSync('tar', ['-tvf', join(work, 'n.tar')], { encoding: 'utf8' });
    expect(verbose).toMatch(/^-rw-r--r-- 1000\/1000 +12 1980-01-01 00:00 home\/cnb\/.profile$/m);
    expect(verbose).toMatch(/^-rwsr-xr-x 0\/0 .* bin\/su-helper$/m);
    expect(verbose).toContain(`${'f'.repeat(120)}.txt`);
    expect(verbose).toContain(`long-target-link -> ../${'t'.repeat(150)}`);
    const listing = await listTar(join(work, 'n.tar'));
    expect(listing.find((e) => e.name === 'bin/ping')?.xattrs).toEqual(['security.capability']);
    expect(listing.find((e) => e.name === 'srv/shared/data')?.type).toBe('hardlink');
    expect(listing.find((e) => e.name === 'bin/hardlink-2')?.type).toBe('file');
  });

  it('takes a list of entries, not only a directory: sorted, hardlinks after their file, whiteouts first', async () => {
    const entries: LayerEntry[] = [
      { path: 'b/z', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('z') },
      { path: 'b/.wh.gone', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 },
      { path: 'b', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
      { path: 'b/.wh..wh..opq', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 0 },
      { path: 'a-b', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('1'), inode: '1:1' },
      { path: 'a/x', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('1'), inode: '1:1' },
      { path: 'a', type: 'directory', mode: 0o755, uid: 0, gid: 0 },
    ];
    expect(sortLayerEntries(entries).map((e) => e.path)).toEqual(['a', 'a/x', 'a-b', 'b', 'b/.wh..wh..opq', 'b/.wh.gone', 'b/z']);
    expect(compareLayerPaths('a/b', 'a-b')).toBeLessThan(0);
    await writeLayer(entries, join(work, 'e.tar'), { compression: 'none' });
    const listing = await listTar(join(work, 'e.tar'));
    expect(listing.map((e) => `${e.name}:${e.type}`)).toEqual(['a:directory', 'a/x:file', 'a-b:hardlink', 'b:directory', 'b/.wh..wh..opq:file', 'b/.wh.gone:file', 'b/z:file']);
  });

  it('refuses bad paths, duplicates and content that does not match its size', async () => {
    const f = (path: string): LayerEntry => ({ path, type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('x') });
    await expect(writeLayer([f('../x')], join(work, 'bad.tar'))).rejects.toThrow(/invalid layer path/);
    await expect(writeLayer([f('/abs')], join(work, 'bad.tar'))).rejects.toThrow(/invalid layer path/);
    await expect(writeLayer([f('a'), f('a')], join(work, 'bad.tar'))).rejects.toThrow(/appears twice/);
    await expect(writeLayer([{ ...f('a'), size: 5 }], join(work, 'bad.tar'))).rejects.toThrow(/size 5/);
  });

  it('handles sizes and ids that need PAX (uid > 2097151) and reads them back', async () => {
    const entries: LayerEntry[] = [{ path: 'big-owner', type: 'file', mode: 0o644, uid: 3_000_000, gid: 4_000_000, content: Buffer.from('x') }];
    await writeLayer(entries, join(work, 'id.tar'), { compression: 'none' });
    const { tar } = await decompressLayer((await import('node:fs')).createReadStream(join(work, 'id.tar')));
    for await (const e of readTar(tar)) expect([e.uid, e.gid]).toEqual([3_000_000, 4_000_000]);
    expect(execFileSync('tar', ['--numeric-owner', '-tvf', join(work, 'id.tar')], { encoding: 'utf8' })).toContain('3000000/4000000');
  });
});

describe('tar headers', () => {
  it('put sizes of 8 GiB and more into a PAX record', () => {
    const size = 10 * 2 ** 30 + 7;
    const fields = { name: 'huge.img', mode: 0o644, uid: 0, gid: 0, size, mtime: 315532801, typeflag: TypeFlag.file, linkname: '', devmajor: 0, devminor: 0 };
    const bytes = encodeHeader(fields, undefined);
    expect(decodeHeader(bytes.subarray(0, BLOCK_SIZE)).typeflag).toBe(TypeFlag.paxLocal);
    const paxSize = decodeHeader(bytes.subarray(0, BLOCK_SIZE)).size;
    expect(decodePax(bytes.subarray(BLOCK_SIZE, BLOCK_SIZE + paxSize)).get('size')?.toString()).toBe(String(size));
    expect(decodeHeader(bytes.subarray(bytes.length - BLOCK_SIZE)).name).toBe('huge.img');
    // Small sizes need no PAX header at all.
    expect(encodeHeader({ ...fields, size: 1 }, undefined).length).toBe(BLOCK_SIZE);
  });
});

describe('layers against GNU tar', () => {
  it('our layer and a GNU tar layer of the same tree, applied to empty directories, give identical trees', async () => {
    const ours = join(work, 'ours.tar.gz');
    await writeLayer(await walkDirectory(tree), ours);
    const gnu = join(work, 'gnu.tar');
    execFileSync('tar', ['--sort=name', '--numeric-owner', '--xattrs', '--xattrs-include=*', '-C', tree, '-cf', gnu, '.']);

    const byUs = join(work, 'applied-ours');
    const byTar = join(work, 'applied-gnu');
    const gnuByUs = join(work, 'applied-gnu-by-us');
    for (const d of [byUs, byTar, gnuByUs]) await mkdir(d);
    await applyLayer(byUs, ours);
    execFileSync('tar', ['-xpf', gnu, '--xattrs', '--xattrs-include=*', '--numeric-owner', '-C', byTar]);
    await applyLayer(gnuByUs, gnu);

    const source = await describeTree(tree);
    expect(source.some((l) => l.startsWith('bin/ping ') && l.includes(`security.capability=${NET_BIND_CAPABILITY.toString('hex')}`))).toBe(true);
    expect(source.some((l) => l.includes('hardlink-of='))).toBe(true);
    expect(await describeTree(byTar)).toEqual(source);
    expect(await describeTree(byUs)).toEqual(source);
    expect(await describeTree(gnuByUs)).toEqual(source);
  });

  it('GNU tar lists and extracts our layer without warnings', async () => {
    const ours = join(work, 'ours-plain.tar');
    await writeLayer(await walkDirectory(tree), ours, { compression: 'none' });
    const out = join(work, 'gnu-extract');
    await mkdir(out);
    const stderr = execFileSync('sh', ['-c', `tar -xpf ${ours} --xattrs --xattrs-include='*' -C ${out} 2>&1 >/dev/null`], { encoding: 'utf8' });
    expect(stderr).toBe('');
    expect(await describeTree(out)).toEqual(await describeTree(tree));
  });
});
