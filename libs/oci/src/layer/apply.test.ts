import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync, zstdCompressSync } from 'node:zlib';
import tarStream from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeTree } from '../testing/tree.ts';
import { applyLayer } from './apply.ts';
import { type LayerEntry, LayerPathError, opaqueEntry, whiteoutEntry } from './entry.ts';
import { writeLayer } from './writer.ts';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'oci-apply-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

let counter = 0;
async function freshDir(name: string): Promise<string> {
  const dir = join(work, `${name}-${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

type Crafted = Partial<tarStream.Header> & { name: string; body?: string };

/** A tar built with tar-stream, so hostile names go in exactly as written. */
async function craftTar(entries: Crafted[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve) => pack.on('end', () => resolve()));
  for (const { body, ...header } of entries) {
    await new Promise<void>((resolve, reject) => pack.entry(header, body ?? '', (err) => (err ? reject(err) : resolve())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

const file = (name: string, body = 'x'): Crafted => ({ name, type: 'file', mode: 0o644, body });

/** A base the hostile layers try to break out of, plus a sibling "outside" dir that must stay untouched. */
async function targetWithOutside(): Promise<{ target: string; outside: string }> {
  const parent = await freshDir('escape');
  const target = join(parent, 'rootfs');
  const outside = join(parent, 'outside');
  await mkdir(join(target, 'etc'), { recursive: true });
  await mkdir(outside);
  await writeFile(join(target, 'etc/passwd'), 'root:x:0:0\n');
  await writeFile(join(outside, 'secret'), 'do not touch\n');
  return { target, outside };
}

describe('applyLayer refuses entries that would land outside the target', () => {
  const cases: [string, Crafted[]][] = [
    ['a ../ name', [file('ok.txt'), file('../outside/evil')]],
    ['a deep ../ name', [file('ok.txt'), file('etc/../../outside/evil')]],
    ['an absolute name', [file('ok.txt'), file('/abs-evil')]],
    ['a write through a symlink to a relative path outside', [file('ok.txt'), { name: 'link', type: 'symlink', linkname: '../outside' }, file('link/evil')]],
    ['a write through a symlink to an absolute path', [file('ok.txt'), { name: 'link', type: 'symlink', linkname: '/tmp' }, file('link/evil')]],
    ['a write through a chain of symlinks', [file('ok.txt'), { name: 'a', type: 'symlink', linkname: 'b/..' }, { name: 'b', type: 'symlink', linkname: '../outside' }, file('a/outside/evil')]],
    ['a hardlink to a relative path outside', [file('ok.txt'), { name: 'hl', type: 'link', linkname: '../outside/secret' }]],
    ['a hardlink to an absolute path', [file('ok.txt'), { name: 'hl', type: 'link', linkname: '/etc/passwd' }]],
    ['a hardlink through a symlink to outside', [file('ok.txt'), { name: 'link', type: 'symlink', linkname: '../outside' }, { name: 'hl', type: 'link', linkname: 'link/secret' }]],
  ];
  for (const [what, entries] of cases) {
    it(`refuses ${what} and leaves the target unchanged`, async () => {
      const { target, outside } = await targetWithOutside();
      const before = await describeTree(target);
      const outsideBefore = await describeTree(outside);
      const layer = join(work, `hostile-${counter++}.tar`);
      await writeFile(layer, await craftTar(entries));
      const error = await applyLayer(target, layer).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(LayerPathError);
      expect((error as Error).message).toMatch(/outside the target|is absolute/);
      expect(await describeTree(target)).toEqual(before);
      expect(await describeTree(outside)).toEqual(outsideBefore);
    });
  }

  it('refuses a write through a symlink the target already has that points outside', async () => {
    const { target, outside } = await targetWithOutside();
    await symlink('../outside', join(target, 'escape-hatch'));
    const before = await describeTree(target);
    const layer = join(work, 'through-existing.tar');
    await writeFile(layer, await craftTar([file('ok.txt'), file('escape-hatch/evil')]));
    await expect(applyLayer(target, layer)).rejects.toThrow(/escape-hatch -> \.\.\/outside, which points outside the target/);
    expect(await describeTree(target)).toEqual(before);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('do not touch\n');
  });

  it("with absolutePaths: 'root', reads absolute names and symlinks relative to the target", async () => {
    const { target, outside } = await targetWithOutside();
    const layer = join(work, 'absolute-root.tar');
    await writeFile(
      layer,
      await craftTar([
        { name: '/some-dir/', type: 'directory', mode: 0o755 },
        file('/some-dir/some-file', 'data'),
        { name: 'tmp-link', type: 'symlink', linkname: '/some-dir' },
        file('tmp-link/through', 'through'),
        { name: '/hl', type: 'link', linkname: '/etc/passwd' },
      ]),
    );
    await applyLayer(target, layer, { absolutePaths: 'root' });
    expect(await readFile(join(target, 'some-dir/some-file'), 'utf8')).toBe('data');
    expect(await readFile(join(target, 'some-dir/through'), 'utf8')).toBe('through');
    expect(await readFile(join(target, 'hl'), 'utf8')).toBe('root:x:0:0\n');
    expect(await readlink(join(target, 'tmp-link'))).toBe('/some-dir');
    expect(await describeTree(outside)).toHaveLength(1);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('do not touch\n');
  });

  it('follows symlinks that stay inside the target (merged /usr)', async () => {
    const target = await freshDir('merged-usr');
    await mkdir(join(target, 'usr/lib'), { recursive: true });
    await symlink('usr/lib', join(target, 'lib'));
    const layer = join(work, 'merged.tar');
    await writeFile(layer, await craftTar([file('lib/libfoo.so', 'elf')]));
    await applyLayer(target, layer);
    expect(await readFile(join(target, 'usr/lib/libfoo.so'), 'utf8')).toBe('elf');
    expect(await readlink(join(target, 'lib'))).toBe('usr/lib');
  });
});

describe('applyLayer on top of a base', () => {
  const e = (path: string, type: LayerEntry['type'], extra: Partial<LayerEntry> = {}): LayerEntry => ({
    path,
    type,
    mode: type === 'directory' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    ...extra,
  });
  const f = (path: string, text: string): LayerEntry => e(path, 'file', { content: Buffer.from(text) });

  it('honours whiteouts and opaque directories in layers we write', async () => {
    const base: LayerEntry[] = [
      e('a', 'directory'),
      f('a/keep', 'keep'),
      f('a/gone', 'gone'),
      e('a/gone-dir', 'directory'),
      f('a/gone-dir/inner', 'inner'),
      e('d', 'directory'),
      f('d/old', 'old'),
      e('d/sub', 'directory'),
      f('d/sub/old2', 'old2'),
      f('x', 'was a file'),
      e('link', 'symlink', { linkTarget: 'a' }),
    ];
    const top: LayerEntry[] = [
      whiteoutEntry('a/gone'),
      whiteoutEntry('a/gone-dir'),
      e('d', 'directory'),
      opaqueEntry('d'),
      f('d/new', 'new'),
      e('x', 'directory'),
      f('x/y', 'now a dir'),
      whiteoutEntry('link'),
      f('a/added', 'added'),
    ];
    const target = await freshDir('whiteouts');
    const baseLayer = await writeLayer(base, join(work, 'base.tar.gz'));
    const topLayer = await writeLayer(top, join(work, 'top.tar.gz'));
    const r1 = await applyLayer(target, join(work, 'base.tar.gz'));
    expect(r1.diffId).toBe(baseLayer.diffId);
    const r2 = await applyLayer(target, join(work, 'top.tar.gz'), { expectedDiffId: topLayer.diffId });
    expect(r2.compression).toBe('gzip');
    const tree = (await describeTree(target, { xattrs: false })).map((l) => l.split(' ').slice(0, 2).join(' '));
    expect(tree).toEqual(['a directory', 'a/added file', 'a/keep file', 'd directory', 'd/new file', 'x directory', 'x/y file']);
  });

  it('keeps entries of the same layer that precede an opaque marker or a whiteout', async () => {
    const target = await freshDir('same-layer');
    await mkdir(join(target, 'd'));
    await writeFile(join(target, 'd/lower'), 'lower');
    const layer = join(work, 'order.tar');
    // Deliberately in the "wrong" order: the marker after a sibling of the same layer.
    await writeFile(layer, await craftTar([file('d/mine', 'mine'), file('d/.wh..wh..opq', ''), file('d/.wh.mine', '')]));
    await applyLayer(target, layer);
    expect((await describeTree(target, { xattrs: false })).map((l) => l.split(' ')[0])).toEqual(['d', 'd/mine']);
  });

  it("with whiteouts: 'ordinary', extracts .wh. names as files and removes nothing (an archive, not a layer)", async () => {
    const target = await freshDir('ordinary');
    await mkdir(join(target, 'd'));
    await writeFile(join(target, 'd/lower'), 'lower');
    await writeFile(join(target, 'victim'), 'stays');
    const archive = join(work, 'ordinary.tar');
    await writeFile(archive, await craftTar([file('d/.wh..wh..opq', 'o'), file('.wh.victim', 'w'), file('d/new', 'new')]));
    await applyLayer(target, archive, { whiteouts: 'ordinary' });
    expect((await describeTree(target, { xattrs: false })).map((l) => l.split(' ')[0])).toEqual(['.wh.victim', 'd', 'd/.wh..wh..opq', 'd/lower', 'd/new', 'victim']);
    expect(await readFile(join(target, '.wh.victim'), 'utf8')).toBe('w');
  });

  it("with whiteouts: 'ordinary', still refuses entries that would land outside the target", async () => {
    const { target, outside } = await targetWithOutside();
    const archive = join(work, 'ordinary-escape.tar');
    await writeFile(archive, await craftTar([file('../outside/.wh.secret', 'x')]));
    await expect(applyLayer(target, archive, { whiteouts: 'ordinary' })).rejects.toThrow(LayerPathError);
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('do not touch\n');
  });

  it('refuses a layer whose diffID is not the expected one, before touching the target', async () => {
    const target = await freshDir('diffid');
    await writeLayer([f('a', 'a')], join(work, 'd.tar.gz'));
    await expect(applyLayer(target, join(work, 'd.tar.gz'), { expectedDiffId: `sha256:${'0'.repeat(64)}` })).rejects.toThrow(/expected sha256:0000/);
    expect(await describeTree(target)).toEqual([]);
  });

  it('detects gzip, zstd and plain tar from magic bytes', async () => {
    const tar = await craftTar([file('hello', 'world')]);
    for (const [name, bytes, compression] of [
      ['plain.tar', tar, 'none'],
      ['layer.gz', gzipSync(tar), 'gzip'],
      ['layer.zst', zstdCompressSync(tar), 'zstd'],
    ] as const) {
      const target = await freshDir('magic');
      await writeFile(join(work, name), bytes);
      const result = await applyLayer(target, join(work, name));
      expect(result.compression).toBe(compression);
      expect(await readFile(join(target, 'hello'), 'utf8')).toBe('world');
    }
  });

  it('replaces a symlink with a file instead of writing through it', async () => {
    const { target, outside } = await targetWithOutside();
    await symlink('../outside/secret', join(target, 'victim'));
    const layer = join(work, 'replace-link.tar');
    await writeFile(layer, await craftTar([file('victim', 'replaced')]));
    await applyLayer(target, layer);
    expect(await readFile(join(target, 'victim'), 'utf8')).toBe('replaced');
    expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('do not touch\n');
  });
});
