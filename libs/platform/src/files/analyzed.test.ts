import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'smol-toml';
import { imageRefToExtend, parseAnalyzed, readAnalyzed, stringifyAnalyzed, updateAnalyzed, writeAnalyzed } from './analyzed.ts';
import { ifExists, TomlFileError } from './toml.ts';

const FULL = `# written by some-restorer
some-top-level = 7

[image]
  reference = "registry.example/app@sha256:aaaa"

[build-image]
  reference = "registry.example/builder@sha256:bbbb"
  some-future-key = "kept"

[metadata]
  [metadata.config]
    sha = "sha256:cccc"
  [[metadata.buildpacks]]
    key = "some-bp"
    version = "1.0"
    ratio = 1.0

[run-image]
  reference = "registry.example/run@sha256:dddd"
  image = "registry.example/run:tag"
  extend = true
  pulled-at = 2024-05-01T10:00:00Z
  [run-image.target]
    id = "some-target-id"
    os = "linux"
    arch = "arm64"
    arch-variant = "v8"
    variant = "v8-from-spec"
    [run-image.target.distro]
      name = "ubuntu"
      version = "22.04"
      codename = "jammy"

[some-other-table]
  count = 3
`;

describe('analyzed.toml', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'platform-analyzed-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe('#parseAnalyzed', () => {
    it('reads every modelled field', () => {
      const a = parseAnalyzed(FULL);
      expect(a.previousImage?.reference).toBe('registry.example/app@sha256:aaaa');
      expect(a.buildImage).toEqual({ reference: 'registry.example/builder@sha256:bbbb', extra: { 'some-future-key': 'kept' } });
      expect(a.runImage?.reference).toBe('registry.example/run@sha256:dddd');
      expect(a.runImage?.image).toBe('registry.example/run:tag');
      expect(a.runImage?.extend).toBe(true);
      expect(a.runImage?.target).toMatchObject({ id: 'some-target-id', os: 'linux', arch: 'arm64', archVariant: 'v8' });
      expect(a.runImage?.target?.distro).toMatchObject({ name: 'ubuntu', version: '22.04', extra: { codename: 'jammy' } });
      expect(a.runImage?.target?.extra).toEqual({ variant: 'v8-from-spec' });
      expect(Object.keys(a.extra ?? {})).toEqual(['some-top-level', 'some-other-table']);
      expect(imageRefToExtend(a, 'build')).toBe('registry.example/builder@sha256:bbbb');
      expect(imageRefToExtend(a, 'run')).toBe('registry.example/run@sha256:dddd');
    });

    it('an empty file is empty metadata', () => {
      expect(parseAnalyzed('')).toEqual({});
      expect(imageRefToExtend({}, 'run')).toBe('');
    });

    it('a table without reference reads as an empty reference', () => {
      expect(parseAnalyzed('[run-image]\nimage = "x"\n').runImage).toEqual({ reference: '', image: 'x' });
    });

    it('names the file and key for a wrong type', () => {
      expect(() => parseAnalyzed('[run-image]\nreference = "r"\nextend = "yes"\n', '/layers/analyzed.toml')).toThrow(
        'reading analyzed file /layers/analyzed.toml: key run-image.extend: expected a boolean, got a string',
      );
      expect(() => parseAnalyzed('[run-image.target.distro]\nname = 1\n', '/l/a.toml')).toThrow(
        'key run-image.target.distro.name: expected a string, got an integer',
      );
      expect(() => parseAnalyzed('run-image = "x"\n', '/l/a.toml')).toThrow('key run-image: expected a table, got a string');
    });

    it('names the file, line and column for malformed TOML', () => {
      let err: unknown;
      try {
        parseAnalyzed('[run-image]\nreference = "r"\nreference = "again"\n', '/layers/analyzed.toml');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(TomlFileError);
      const e = err as TomlFileError;
      expect(e.path).toBe('/layers/analyzed.toml');
      expect(e.line).toBe(3);
      expect(e.message).toMatch(/^reading analyzed file \/layers\/analyzed\.toml: line 3, column \d+: /);
    });
  });

  describe('round trips', () => {
    it('write(read(x)) keeps every key, table and value type', async () => {
      const path = join(dir, 'analyzed.toml');
      await writeFile(path, FULL);
      await writeAnalyzed(path, await readAnalyzed(path));
      const after = await readFile(path, 'utf8');
      const opts = { integersAsBigInt: true } as const;
      expect(parse(after, opts)).toEqual(parse(FULL, opts));
      expect(after).toContain('ratio = 1.0');
      expect(after).toContain('count = 3\n');
      expect(after).toContain('pulled-at = 2024-05-01T10:00:00.000Z');
    });

    it('updateAnalyzed changes one field and keeps the rest', async () => {
      const path = join(dir, 'analyzed.toml');
      await writeFile(path, FULL);
      await updateAnalyzed(path, (a) => {
        a.runImage!.reference = 'registry.example/run@sha256:eeee';
        a.runImage!.extend = undefined;
      });
      // biome-ignore lint/suspicious/noExplicitAny: the raw TOML, walked by the names the test asserts on
      const raw = parse(await readFile(path, 'utf8'), { integersAsBigInt: true }) as Record<string, any>;
      expect(raw['run-image'].reference).toBe('registry.example/run@sha256:eeee');
      expect(raw['run-image']).not.toHaveProperty('extend');
      expect(raw['run-image']['pulled-at']).toBeDefined();
      expect(raw['run-image'].target.distro.codename).toBe('jammy');
      expect(raw['build-image']['some-future-key']).toBe('kept');
      expect(raw['some-other-table'].count).toBe(3n);
      expect(raw['metadata'].buildpacks[0].key).toBe('some-bp');
    });

    it('writes new metadata in the lifecycle layout', () => {
      const text = stringifyAnalyzed({
        buildImage: { reference: 'b@sha256:1' },
        runImage: { reference: 'r@sha256:2', image: 'r:latest', extend: true, target: { os: 'linux', arch: 'amd64' } },
      });
      expect(parseAnalyzed(text)).toEqual({
        buildImage: { reference: 'b@sha256:1' },
        runImage: { reference: 'r@sha256:2', image: 'r:latest', extend: true, target: { os: 'linux', arch: 'amd64' } },
      });
      expect(text.indexOf('[build-image]')).toBeLessThan(text.indexOf('[run-image]'));
    });
  });

  describe('#readAnalyzed', () => {
    it('a missing file is a notFound error naming the file; ifExists turns it into undefined', async () => {
      const path = join(dir, 'nope.toml');
      await expect(readAnalyzed(path)).rejects.toMatchObject({ notFound: true, message: `reading analyzed file ${path}: file does not exist` });
      await expect(ifExists(readAnalyzed(path))).resolves.toBeUndefined();
    });

    it('ifExists passes other errors through', async () => {
      const path = join(dir, 'bad.toml');
      await writeFile(path, '[run-image\n');
      await expect(ifExists(readAnalyzed(path))).rejects.toThrow(`reading analyzed file ${path}: line 1`);
    });

    it('leaves no temp files behind', async () => {
      const path = join(dir, 'analyzed.toml');
      await writeAnalyzed(path, { runImage: { reference: 'r' } });
      await writeAnalyzed(path, { runImage: { reference: 's' } });
      expect(await readdir(dir)).toEqual(['analyzed.toml']);
    });
  });
});
