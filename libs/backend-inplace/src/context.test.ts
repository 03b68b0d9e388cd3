/**
 * What COPY and ADD see of the build context in place: the ignore file
 * (`<Dockerfile>.dockerignore`, else the context's `.dockerignore`) with
 * Docker's pattern rules, local archives extracted as Docker extracts them,
 * and errors that leave naming the instruction to the core.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackendInstructionError, MemorySink, readLayoutImage, type ImageDescription } from '@cnb-extender/extender-core';
import { readLayerFiles, readLayerPaths } from '@cnb-extender/extender-core/testing';
import { writeLayer, type Digest } from '@cnb-extender/oci';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createInplaceBackend } from './backend.ts';
import { removeTree } from './test/support.ts';

const scratch = mkdtempSync(join(tmpdir(), 'inplace-context-test-'));
afterAll(() => removeTree(scratch));

async function runFixture(): Promise<ImageDescription> {
  const f = inject('testenv').fixtures.run;
  return (await readLayoutImage(f.layoutDir, f.registryRef, f.manifestDigest as Digest)).image;
}

function writeTree(dir: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

interface Applied {
  result: ImageDescription;
  /** Paths of the last new layer. */
  lastPaths: string[];
}

/** Applies `lines` (after `ARG base_image`, `FROM`, `USER root`) with the Dockerfile at `dockerfilePath`. */
async function apply(lines: string[], contextDir: string, dockerfilePath = join(scratch, `run-${Math.random().toString(36).slice(2)}.Dockerfile`), cacheTtlMs = 0): Promise<Applied> {
  const backend = createInplaceBackend({ root: 'unpack', network: false });
  const base = await runFixture();
  const workDir = mkdtempSync(join(scratch, 'work-'));
  const ctx = { signal: new AbortController().signal, events: new MemorySink(), workDir };
  try {
    const content = ['ARG base_image', 'FROM ${base_image}', 'USER root', ...lines, ''].join('\n');
    const result = await backend.apply(
      { extensionId: 'test/ctx', kind: 'run', path: dockerfilePath, content, args: [{ name: 'base_image', value: base.reference ?? 'x' }], contextDir },
      base,
      { buildContext: contextDir, ignorePaths: [workDir], cacheTtlMs, extendDir: join(scratch, 'extend') },
      ctx,
    );
    const last = result.layers.at(-1)!;
    return { result, lastPaths: result.layers.length > base.layers.length ? await readLayerPaths(last.blob!) : [] };
  } finally {
    await backend.cleanup(ctx);
  }
}

/** The layer paths below image directory `dir`. */
function under(paths: string[], dir: string): string[] {
  return paths.filter((p) => p.startsWith(`${dir}/`)).map((p) => p.slice(dir.length + 1));
}

describe('the build context in place', () => {
  it('leaves out what the context\'s .dockerignore excludes, with exceptions, ** and directory rules, as Docker does', async () => {
    const contextDir = mkdtempSync(join(scratch, 'ctx-'));
    writeTree(contextDir, {
      '.dockerignore': '# the secret stays home\nsecret.txt\n/logs\n!logs/keep.log\n**/*.tmp\nbuild/\n',
      'secret.txt': 'secret\n',
      'app.txt': 'app\n',
      'logs/a.log': 'a\n',
      'logs/keep.log': 'keep\n',
      'src/main.ts': 'main\n',
      'src/deep/x.tmp': 'tmp\n',
      'build/out': 'out\n',
    });
    symlinkSync('secret.txt', join(contextDir, 'to-secret'));
    const { lastPaths } = await apply(['COPY . /app/'], contextDir);
    expect(under(lastPaths, 'app')).toEqual(['.dockerignore', 'app.txt', 'logs', 'logs/keep.log', 'src', 'src/deep', 'src/main.ts', 'to-secret']);
  });

  it('finds no excluded source, by name, through a symlink or by a wildcard', async () => {
    const contextDir = mkdtempSync(join(scratch, 'ctx-'));
    writeTree(contextDir, { '.dockerignore': 'secret.txt\n', 'secret.txt': 'secret\n', 'a.txt': 'a\n' });
    symlinkSync('secret.txt', join(contextDir, 'to-secret'));
    const failure = (await apply(['COPY secret.txt /x'], contextDir).catch((e: unknown) => e)) as BackendInstructionError;
    expect(failure).toBeInstanceOf(BackendInstructionError);
    expect(failure.instruction).toBe('COPY secret.txt /x');
    expect(failure.message).toBe(`source "secret.txt": not found in the build context (${join(contextDir, '.dockerignore')} excludes it)`);
    await expect(apply(['COPY to-secret /x'], contextDir)).rejects.toThrow(/source "to-secret": not found in the build context/);
    const { lastPaths } = await apply(['COPY *.txt /g/'], contextDir);
    expect(under(lastPaths, 'g')).toEqual(['a.txt']);
  });

  it('uses <Dockerfile>.dockerignore beside the Dockerfile before the context\'s .dockerignore, and a change of it is no cache hit', async () => {
    const contextDir = mkdtempSync(join(scratch, 'ctx-'));
    writeTree(contextDir, { '.dockerignore': 'a.txt\n', 'a.txt': 'a\n', 'b.txt': 'b\n' });
    const dockerfileDir = mkdtempSync(join(scratch, 'dockerfile-'));
    const dockerfile = join(dockerfileDir, 'run.Dockerfile');
    writeFileSync(`${dockerfile}.dockerignore`, 'b.txt\n');
    const day = 24 * 3600 * 1000;
    const first = await apply(['COPY . /app/'], contextDir, dockerfile, day);
    expect(under(first.lastPaths, 'app')).toEqual(['.dockerignore', 'a.txt']);
    writeFileSync(`${dockerfile}.dockerignore`, 'a.txt\n');
    const second = await apply(['COPY . /app/'], contextDir, dockerfile, day);
    expect(under(second.lastPaths, 'app')).toEqual(['.dockerignore', 'b.txt']);
  });

  it('refuses a malformed ignore file at the first COPY, naming the file', async () => {
    const contextDir = mkdtempSync(join(scratch, 'ctx-'));
    writeTree(contextDir, { '.dockerignore': 'ok\n!\n', 'a.txt': 'a\n' });
    await expect(apply(['RUN true'], contextDir)).resolves.toBeDefined();
    await expect(apply(['COPY a.txt /a.txt'], contextDir)).rejects.toThrow(`reading ${join(contextDir, '.dockerignore')}: illegal exclusion pattern: "!"`);
  });
});

/** A plain tar of files, written as given (names are not checked or reordered). */
async function writeTar(path: string, entries: { name: string; body: string }[]): Promise<void> {
  await writeLayer(
    entries.map(({ name, body }) => ({ path: name, type: 'file' as const, mode: 0o644, uid: 0, gid: 0, content: Buffer.from(body) })),
    path,
    { compression: 'none', sort: false },
  );
}

describe('ADD of a local archive in place', () => {
  it('extracts .wh. names as files, as Docker does, and removes nothing from the root', async () => {
    const contextDir = mkdtempSync(join(scratch, 'ctx-'));
    await writeTar(join(contextDir, 'wh.tar'), [
      { name: '.wh.cnb-fixture', body: 'a file\n' },
      { name: '.wh..wh..opq', body: 'also a file\n' },
      { name: 'added', body: 'added\n' },
    ]);
    // /etc/cnb-fixture and /etc/passwd come from the base: a whiteout would remove them before the RUN
    const { result } = await apply(['ADD wh.tar /etc/', 'RUN test -f /etc/cnb-fixture && test -f /etc/passwd && cat /etc/.wh.cnb-fixture /etc/.wh..wh..opq /etc/added > /seen'], contextDir);
    const files = await readLayerFiles(result.layers.at(-1)!.blob!);
    expect(files.get('seen')?.toString()).toBe('a file\nalso a file\nadded\n');
  });

  it('still refuses an archive entry that leaves the destination', async () => {
    const contextDir = mkdtempSync(join(scratch, 'ctx-'));
    writeFileSync(join(contextDir, 'x'), 'x');
    execFileSync('tar', ['-cf', join(contextDir, 'evil.tar'), '-P', '--transform', 's,^x$,../../../.wh.escaped,', '-C', contextDir, 'x']);
    await expect(apply(['ADD evil.tar /opt/'], contextDir)).rejects.toThrow(/extracting evil\.tar: .*(outside|escap)/);
  });
});

describe('errors name the instruction once', () => {
  it('a failing RUN: the message says what failed in it, the instruction is a property', async () => {
    const contextDir = mkdtempSync(join(scratch, 'ctx-'));
    const err = (await apply(['RUN exit 7'], contextDir).catch((e: unknown) => e)) as BackendInstructionError;
    expect(err).toBeInstanceOf(BackendInstructionError);
    expect(err.instruction).toBe('RUN exit 7');
    expect(err.message).toMatch(/^running \["\/bin\/sh","-c","exit 7"\] as 0:0 in \/: exit code 7$/);
    const unsupported = (await apply(['RUN --mount=type=cache,target=/c true'], contextDir).catch((e: unknown) => e)) as BackendInstructionError;
    expect(unsupported.message).toBe('RUN --mount is not supported by the in-place backend');
  });
});
