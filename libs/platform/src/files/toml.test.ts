import { chmod, chown, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { composeTable, parseToml, stringifyToml, TomlFileError, writeFileAtomic, writeTomlFile } from './toml.ts';

describe('toml helpers', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'platform-toml-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps integer/float/date types through parse → stringify', () => {
    const text = 'i = 1\nf = 1.0\nbig = 9007199254740993\nd = 1979-05-27\n';
    const out = stringifyToml(parseToml(text, { what: 'f', path: 'p' }));
    expect(out).toBe('i = 1\nf = 1.0\nbig = 9007199254740993\nd = 1979-05-27\n');
  });

  it('reports syntax errors with file, line and column', () => {
    try {
      parseToml('a = 1\nb = \n', { what: 'group file', path: '/l/group.toml' });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(TomlFileError);
      expect((err as TomlFileError).line).toBe(2);
      expect((err as TomlFileError).message).toMatch(/^reading group file \/l\/group\.toml: line 2, column \d+: invalid value/);
    }
  });

  it('composeTable: known keys first, undefined dropped, extra kept but never overriding known keys', () => {
    expect(composeTable({ a: 'x', b: undefined }, { b: 'old', c: 1n, a: 'old' })).toEqual({ a: 'x', c: 1n });
    expect(Object.keys(composeTable({ z: 1n, a: 2n }, { m: 3n }))).toEqual(['z', 'a', 'm']);
  });

  describe('#writeFileAtomic', () => {
    it('replaces the file, keeps its mode and leaves no temp file', async () => {
      const path = join(dir, 'f.toml');
      await writeFile(path, 'old');
      await chmod(path, 0o600);
      await writeFileAtomic(path, 'new');
      expect(await readFile(path, 'utf8')).toBe('new');
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(await readdir(dir)).toEqual(['f.toml']);
    });

    it('keeps the owner of the file it replaces (the extender runs as root, later phases as the CNB user)', async () => {
      const path = join(dir, 'owned.toml');
      await writeFile(path, 'old');
      const root = process.getuid?.() === 0;
      // only root can hand a file to another user; otherwise the file stays ours
      const owner = root ? { uid: 4321, gid: 4322 } : { uid: process.getuid!(), gid: process.getgid!() };
      if (root) await chown(path, owner.uid, owner.gid);
      await writeFileAtomic(path, 'new');
      const st = await stat(path);
      expect({ uid: st.uid, gid: st.gid }).toEqual(owner);
    });

    it('concurrent writers never leave a partial file', async () => {
      const path = join(dir, 'c.toml');
      const contents = Array.from({ length: 8 }, (_, i) => `v = "${String(i).repeat(50_000)}"\n`);
      await Promise.all(contents.map((c) => writeFileAtomic(path, c)));
      expect(contents).toContain(await readFile(path, 'utf8'));
      expect(await readdir(dir)).toEqual(['c.toml']);
    });

    it('fails naming the file when the directory is missing, leaving nothing behind', async () => {
      const path = join(dir, 'missing', 'analyzed.toml');
      await expect(writeTomlFile({ what: 'analyzed file', path }, { a: 'b' })).rejects.toThrow(`writing analyzed file ${path}: `);
      await mkdir(join(dir, 'missing'));
      expect(await readdir(join(dir, 'missing'))).toEqual([]);
    });
  });
});
