import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerignoreMatcher, parseDockerignore, readDockerignore } from './dockerignore.ts';
import { PatternMatcher } from './patterns.ts';
import { contextPaths, walkContextTree } from './walk.ts';

describe('parseDockerignore (ignorefile.ReadAll)', () => {
  it('drops comments, blank lines and a BOM, trims, cleans and makes absolute patterns relative', () => {
    const text = '\ufefftest1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! \n  # not a comment\r\nx//y/../z/\r\n!./keep';
    expect(parseDockerignore(text)).toEqual(['test1', 'test2', 'a/file/here', 'lastfile', '!inverted/abs/path', '!', '!', '# not a comment', 'x/z', '!keep']);
  });

  it('keeps what the matcher refuses for the matcher to refuse, naming the file', () => {
    expect(() => dockerignoreMatcher({ path: '/ctx/.dockerignore', text: 'ok\n!\n', patterns: parseDockerignore('ok\n!\n') })).toThrow(/^reading \/ctx\/\.dockerignore: illegal exclusion pattern: "!"$/);
    expect(dockerignoreMatcher(undefined).empty).toBe(true);
  });
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dockerignore-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readDockerignore', () => {
  it("prefers <Dockerfile>.dockerignore beside the Dockerfile to the context's .dockerignore, as BuildKit does", async () => {
    const context = join(dir, 'prefer', 'context');
    await mkdir(context, { recursive: true });
    const dockerfile = join(dir, 'prefer', 'run.Dockerfile');
    await writeFile(dockerfile, 'FROM x\n');
    await writeFile(join(context, '.dockerignore'), 'from-context\n');
    expect(await readDockerignore(context, dockerfile)).toEqual({ path: join(context, '.dockerignore'), text: 'from-context\n', patterns: ['from-context'] });
    await writeFile(`${dockerfile}.dockerignore`, '/from-dockerfile\n');
    expect(await readDockerignore(context, dockerfile)).toEqual({ path: `${dockerfile}.dockerignore`, text: '/from-dockerfile\n', patterns: ['from-dockerfile'] });
    expect(await readDockerignore(context)).toEqual({ path: join(context, '.dockerignore'), text: 'from-context\n', patterns: ['from-context'] });
  });

  it('is undefined without either file, also for a context that does not exist', async () => {
    expect(await readDockerignore(join(dir, 'nothing'), join(dir, 'nothing', 'Dockerfile'))).toBeUndefined();
  });
});

describe('walkContextTree', () => {
  let root: string;
  beforeAll(async () => {
    root = join(dir, 'tree');
    for (const d of ['logs', 'a/keep', 'a/b', 'src']) await mkdir(join(root, d), { recursive: true });
    for (const f of ['secret.txt', 'app.txt', 'logs/a.log', 'logs/keep.log', 'a/keep/x', 'a/b/keep', 'src/main.ts', 'src/x.tmp']) await writeFile(join(root, f), f);
    await symlink('secret.txt', join(root, 'link'));
  });

  async function paths(patterns: string[], rule?: 'buildkit' | 'docker-cli'): Promise<string[]> {
    const out: string[] = [];
    for await (const e of walkContextTree(root, { exclude: new PatternMatcher(patterns), ...(rule ? { rule } : {}) })) out.push(e.path);
    return out;
  }

  it('gives every entry in byte order without patterns, symlinks unfollowed', async () => {
    expect(await paths([])).toEqual(['a', 'a/b', 'a/b/keep', 'a/keep', 'a/keep/x', 'app.txt', 'link', 'logs', 'logs/a.log', 'logs/keep.log', 'secret.txt', 'src', 'src/main.ts', 'src/x.tmp']);
  });

  it('leaves out excluded entries; an exception below an excluded directory brings the directory back (BuildKit)', async () => {
    expect(await paths(['secret.txt', 'logs', '!logs/keep.log', '**/*.tmp'])).toEqual(['a', 'a/b', 'a/b/keep', 'a/keep', 'a/keep/x', 'app.txt', 'link', 'logs', 'logs/keep.log', 'src', 'src/main.ts']);
  });

  it('enters every excluded directory for a wildcard exception with buildkit, none with docker-cli, and never gives the directory with docker-cli', async () => {
    expect(await paths(['a', '!*/keep'])).toEqual(['a', 'a/keep', 'a/keep/x', 'app.txt', 'link', 'logs', 'logs/a.log', 'logs/keep.log', 'secret.txt', 'src', 'src/main.ts', 'src/x.tmp']);
    expect(await paths(['a', '!*/keep'], 'docker-cli')).toEqual(['app.txt', 'link', 'logs', 'logs/a.log', 'logs/keep.log', 'secret.txt', 'src', 'src/main.ts', 'src/x.tmp']);
    expect(await paths(['logs', '!logs/keep.log'], 'docker-cli')).toEqual(['a', 'a/b', 'a/b/keep', 'a/keep', 'a/keep/x', 'app.txt', 'link', 'logs/keep.log', 'secret.txt', 'src', 'src/main.ts', 'src/x.tmp']);
  });

  it('keeps only included entries with include patterns, and the directories above them', async () => {
    expect([...(await contextPaths(root, { include: new PatternMatcher(['a/b/keep', '**/main.ts']) }))]).toEqual(['a', 'a/b', 'a/b/keep', 'src', 'src/main.ts']);
  });
});
