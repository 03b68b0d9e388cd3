import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { listWorkspacePackages } from './workspace.ts';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const packages = await listWorkspacePackages(repoRoot);

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function vitestProjectName(dir: string): Promise<string | undefined> {
  const file = path.join(repoRoot, dir, 'vitest.config.ts');
  if (!(await exists(file))) return undefined;
  return /\bname:\s*'([^']+)'/.exec(await readFile(file, 'utf8'))?.[1];
}

describe('workspace packages', () => {
  it('exist', () => {
    expect(packages.length).toBeGreaterThan(0);
  });

  it.each(packages.map((pkg) => [pkg.dir, pkg] as const))('%s is wired into tests, type-check and docs', async (dir, pkg) => {
    const json = JSON.parse(await readFile(path.join(repoRoot, dir, 'package.json'), 'utf8')) as {
      scripts?: Record<string, string>;
    };
    const project = await vitestProjectName(dir);
    expect(project, `${dir}/vitest.config.ts names its project`).toBeDefined();
    // nx runs the package's `test` script; it must run the same vitest project the root run includes.
    const rootFromPackage = path.relative(path.join(repoRoot, dir), repoRoot);
    expect(json.scripts?.test).toBe(`vitest run --root ${rootFromPackage} --project ${project}`);
    expect(pkg.tags.filter((tag) => tag.startsWith('type:')), `${dir} has exactly one type tag`).toHaveLength(1);
    const references = (JSON.parse(await readFile(path.join(repoRoot, 'tsconfig.json'), 'utf8')) as { references: { path: string }[] }).references;
    expect(references.map((ref) => ref.path)).toContain(dir);
    expect(await exists(path.join(repoRoot, dir, 'README.md')), `${dir}/README.md`).toBe(true);
  });
});

describe('nx and the root test command', () => {
  it('agree on which projects have tests', async () => {
    const { stdout } = await run(path.join(repoRoot, 'node_modules', '.bin', 'nx'), ['show', 'projects', '--with-target', 'test', '--json'], {
      cwd: repoRoot,
      env: { ...process.env, NX_DAEMON: 'false', NX_NO_CLOUD: 'true' },
    });
    const nxProjects = (JSON.parse(stdout) as string[]).sort();
    const withVitest: string[] = [];
    for (const pkg of packages) if (await vitestProjectName(pkg.dir)) withVitest.push(pkg.name);
    expect(nxProjects).toEqual(withVitest.sort());
  }, 120_000);
});
