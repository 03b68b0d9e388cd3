import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkBoundaries, checkReferences, formatReferenceMismatch, formatViolation } from './boundaries.ts';
import { findImports } from './imports.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

interface FakePackage {
  dir: string;
  name: string;
  tags: string[];
  dependencies?: string[];
  files: Record<string, string>;
}

const temps: string[] = [];
afterEach(async () => {
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function workspace(packages: FakePackage[]): Promise<string> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'boundaries-'));
  temps.push(root);
  await writeFile(path.join(root, 'package.json'), JSON.stringify({ workspaces: ['libs/*', 'apps/*', 'tools/*'] }));
  for (const pkg of packages) {
    await mkdir(path.join(root, pkg.dir, 'src'), { recursive: true });
    const dependencies = Object.fromEntries((pkg.dependencies ?? []).map((name) => [name, '*']));
    await writeFile(
      path.join(root, pkg.dir, 'package.json'),
      JSON.stringify({ name: pkg.name, dependencies, nx: { tags: pkg.tags } }),
    );
    for (const [file, text] of Object.entries(pkg.files)) {
      await writeFile(path.join(root, pkg.dir, file), text);
    }
  }
  return root;
}

const oci: FakePackage = { dir: 'libs/oci', name: '@x/oci', tags: ['type:util'], files: { 'src/index.ts': 'export {};' } };
const core = (source: string, dependencies: string[] = []): FakePackage => ({
  dir: 'libs/extender-core',
  name: '@x/extender-core',
  tags: ['type:core'],
  dependencies,
  files: { 'src/index.ts': source },
});
const backend = (id: string, source = 'export {};', dependencies: string[] = []): FakePackage => ({
  dir: `libs/backend-${id}`,
  name: `@x/backend-${id}`,
  tags: ['type:backend'],
  dependencies,
  files: { 'src/index.ts': source },
});
const app: FakePackage = { dir: 'apps/extender', name: '@x/extender', tags: ['type:app'], files: { 'src/main.ts': '' } };

describe('checkBoundaries', () => {
  it('accepts a workspace that keeps its boundaries', async () => {
    const root = await workspace([
      oci,
      core("import { x } from '@x/oci';\nimport type { Y } from '@x/oci/model';", ['@x/oci']),
      backend('inplace', "import { c } from '@x/extender-core';\nimport '@x/oci';", ['@x/extender-core', '@x/oci']),
      app,
    ]);
    // A backend may use the core's interface; the core and utils stay clean.
    const violations = await checkBoundaries(root);
    expect(violations.filter((v) => v.from !== '@x/backend-inplace')).toEqual([]);
  });

  it('fails when a lib imports an app', async () => {
    const root = await workspace([oci, { ...core("import '@x/extender';", ['@x/extender']) }, app]);
    const [violation, ...rest] = await checkBoundaries(root);
    expect(rest).toEqual([]);
    expect(formatViolation(violation!)).toBe(
      'libs/extender-core/src/index.ts:1: @x/extender-core imports @x/extender: nothing imports an app (share code through a lib)',
    );
  });

  it('fails when extender-core imports a backend, even lazily or behind a comment-free dynamic import', async () => {
    const source = "// import '@x/backend-docker' is only a comment\nexport const load = () => import('@x/backend-buildah');";
    const root = await workspace([oci, core(source, ['@x/backend-buildah']), backend('buildah')]);
    const violations = await checkBoundaries(root);
    expect(violations.map((v) => [v.line, v.to, v.rule])).toEqual([
      [2, '@x/backend-buildah', 'extender-core never imports a backend'],
    ]);
  });

  it('fails when a backend imports another backend', async () => {
    const root = await workspace([
      backend('buildah'),
      backend('docker', "export { x } from '@x/backend-buildah';", ['@x/backend-buildah']),
    ]);
    const violations = await checkBoundaries(root);
    expect(violations.map((v) => `${v.from} -> ${v.to}: ${v.rule}`)).toEqual([
      '@x/backend-docker -> @x/backend-buildah: a backend never imports another backend',
    ]);
  });

  it('fails on a relative import reaching into another package', async () => {
    const root = await workspace([oci, core("import { x } from '../../oci/src/index.ts';")]);
    const violations = await checkBoundaries(root);
    expect(violations.map((v) => v.rule)).toEqual(['import another package by its name, not by a relative path into it']);
  });

  it('fails on an import of a workspace package that is not declared as a dependency', async () => {
    const root = await workspace([oci, core("import '@x/oci';")]);
    const violations = await checkBoundaries(root);
    expect(violations.map((v) => v.rule)).toEqual(['@x/oci is imported but not declared in libs/extender-core/package.json']);
  });

  it('lets only the apps, tools and e2e tests import the CLI layer and its exit-code table', async () => {
    const cli: FakePackage = { dir: 'libs/extender-cli', name: '@x/extender-cli', tags: ['type:cli'], dependencies: ['@x/extender-core'], files: { 'src/exit-codes.ts': 'export {};' } };
    const importsCli = (pkg: FakePackage): FakePackage => ({ ...pkg, dependencies: [...(pkg.dependencies ?? []), '@x/extender-cli'], files: { 'src/index.ts': "import { exitCodeOf } from '@x/extender-cli';" } });
    const kit: FakePackage = { dir: 'libs/image-backend-kit', name: '@x/image-backend-kit', tags: ['type:backend-kit'], files: {} };
    const catalog: FakePackage = { dir: 'libs/backend-catalog', name: '@x/backend-catalog', tags: ['type:composition'], files: {} };
    const release: FakePackage = { dir: 'tools/release', name: '@x/release', tags: ['type:tool'], files: {} };
    const root = await workspace([
      oci,
      core('export {};'),
      cli,
      importsCli(backend('docker')),
      importsCli(kit),
      importsCli(catalog),
      importsCli(app),
      importsCli(release),
    ]);
    const rule = 'only the apps import the CLI layer (a library never reads its error-code → exit-code table)';
    expect((await checkBoundaries(root)).map((v) => `${v.from}: ${v.rule}`).sort()).toEqual([
      `@x/backend-catalog: ${rule}`,
      `@x/backend-docker: ${rule}`,
      `@x/image-backend-kit: ${rule}`,
    ]);
  });

  it('lets test code use tools but not production code', async () => {
    const tool: FakePackage = { dir: 'tools/testenv', name: '@x/testenv', tags: ['type:tool'], files: { 'src/index.ts': '' } };
    const pkg = { ...oci, dependencies: ['@x/testenv'], files: { 'src/a.test.ts': "import '@x/testenv';", 'src/a.ts': "import '@x/testenv';" } };
    const root = await workspace([pkg, tool]);
    const violations = await checkBoundaries(root);
    expect(violations.map((v) => `${v.file}: ${v.rule}`)).toEqual(['libs/oci/src/a.ts: a util lib imports only util libs']);
  });
});

describe('this repository', () => {
  it('keeps its module boundaries', async () => {
    const violations = await checkBoundaries(repoRoot);
    expect(violations.map(formatViolation)).toEqual([]);
  });
});

describe('findImports', () => {
  it('finds static, type-only, re-export, side-effect, dynamic and require forms with line numbers', () => {
    const source = [
      "import a from 'a';",
      "import type { B } from 'b';",
      "export * from 'c';",
      "import 'd';",
      "const e = await import('e');",
      "const f = require('f');",
      "/* import 'g'; */",
      "import {",
      '  h,',
      "} from 'h';",
    ].join('\n');
    expect(findImports(source)).toEqual([
      { specifier: 'a', line: 1 },
      { specifier: 'b', line: 2 },
      { specifier: 'c', line: 3 },
      { specifier: 'd', line: 4 },
      { specifier: 'e', line: 5 },
      { specifier: 'f', line: 6 },
      { specifier: 'h', line: 8 },
    ]);
  });
});

describe('tsconfig references', () => {
  it('name the same workspace packages as package.json, in the repository', async () => {
    expect((await checkReferences(repoRoot)).map(formatReferenceMismatch)).toEqual([]);
  });

  it('report a package declared but not referenced, and one referenced but not declared', async () => {
    const root = await workspace([
      { dir: 'libs/core', name: '@x/core', tags: [], files: { 'tsconfig.json': '{}' } },
      { dir: 'libs/oci', name: '@x/oci', tags: [], files: { 'tsconfig.json': '{}' } },
      { dir: 'libs/backend', name: '@x/backend', tags: [], dependencies: ['@x/core', 'left-pad'], files: { 'tsconfig.json': JSON.stringify({ references: [{ path: '../oci' }] }) } },
    ]);
    expect((await checkReferences(root)).map(formatReferenceMismatch)).toEqual([
      'libs/backend/tsconfig.json: libs/core is declared in package.json but not referenced; libs/oci is referenced but not declared in package.json',
    ]);
  });
});
