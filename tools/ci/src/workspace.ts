import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** One npm workspace package as the repository checks see it. */
export interface WorkspacePackage {
  name: string;
  /** Directory relative to the workspace root, with forward slashes (`libs/oci`). */
  dir: string;
  tags: string[];
  dependencies: string[];
}

interface PackageJson {
  name?: string;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  nx?: { tags?: string[] };
}

async function readJson(file: string): Promise<PackageJson> {
  return JSON.parse(await readFile(file, 'utf8')) as PackageJson;
}

async function isFile(file: string): Promise<boolean> {
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}

/**
 * Expand the root `workspaces` globs. Only the forms this repository uses are
 * supported: a plain directory (`e2e`) or one trailing star (`libs/*`).
 */
async function workspaceDirs(root: string, patterns: string[]): Promise<string[]> {
  const dirs: string[] = [];
  for (const pattern of patterns) {
    if (pattern.endsWith('/*')) {
      const parent = pattern.slice(0, -2);
      const entries = await readdir(path.join(root, parent), { withFileTypes: true }).catch(() => []);
      for (const entry of entries) {
        if (entry.isDirectory()) dirs.push(`${parent}/${entry.name}`);
      }
    } else if (pattern.includes('*')) {
      throw new Error(`unsupported workspace pattern ${JSON.stringify(pattern)}: use "dir" or "dir/*"`);
    } else {
      dirs.push(pattern);
    }
  }
  return dirs.sort();
}

/** Every workspace package under `root` that has a package.json. */
export async function listWorkspacePackages(root: string): Promise<WorkspacePackage[]> {
  const rootJson = await readJson(path.join(root, 'package.json'));
  const packages: WorkspacePackage[] = [];
  for (const dir of await workspaceDirs(root, rootJson.workspaces ?? [])) {
    const manifest = path.join(root, dir, 'package.json');
    if (!(await isFile(manifest))) continue;
    const json = await readJson(manifest);
    if (!json.name) throw new Error(`${dir}/package.json has no "name"`);
    packages.push({
      name: json.name,
      dir,
      tags: json.nx?.tags ?? [],
      dependencies: Object.keys({
        ...json.dependencies,
        ...json.devDependencies,
        ...json.optionalDependencies,
        ...json.peerDependencies,
      }),
    });
  }
  return packages;
}

/** Source files of a package: every .ts/.mts/.js/.mjs file outside node_modules and dist. */
export async function listSourceFiles(root: string, pkg: WorkspacePackage): Promise<string[]> {
  const files: string[] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) await walk(full);
      else if (/\.(m?ts|m?js|cts|cjs)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) files.push(full);
    }
  }
  await walk(path.join(root, pkg.dir));
  return files.sort();
}
