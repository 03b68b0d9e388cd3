/**
 * The fast test lane: the test files that need no test environment and no root (no daemon,
 * registry, fixture image, chown or user switch). A file is in it unless it, or a module it
 * imports (by a relative path or from a workspace package), reaches for the environment
 * (`inject('testenv')`, the testenv package, the variable the global setup exports) or for
 * root. Only test code is read (test files, and `test/`, `testing/`, `test-*` support modules):
 * production code chowns and switches users on purpose, whichever test calls it. Found from the
 * source, so a new test lands in the right lane without a list to keep.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { isTestSupport } from './boundaries.ts';
import { findImports } from './imports.ts';

const ENVIRONMENT_MARKERS = [
  /\binject\b[^\n]*\(\s*['"]testenv['"]\s*\)/,
  /['"]@cnb-extender\/testenv['"]/,
  /testenv\/src\//,
  /\bCNB_TESTENV\b/,
  /\btestEnvFromProcess\b/,
  /\bstartTestEnv\(/,
  // a file that needs them another way (runs the CLI's default in-place backend, starts the example's registry) says so
  /^\/\/ test lane: system\b/m,
  // root: the checks that refuse to run without it, chown, and switching users
  /\brequireRoot\(/,
  /\bprocess\.getuid\(\)\s*(?:!==|===|!=|==)\s*0\b/,
  /\b(?:lchown|chown)(?:Sync)?\(/,
  /\bEXTEND_CHILD_USER\b/,
  /\b(?:uid|gid):\s*\d+/,
];
const WORKSPACE_SCOPE = '@cnb-extender/';

/** `@cnb-extender/oci/testing` → the source file its package exports it as. */
function workspaceModule(specifier: string, workspaceRoot: string): string | undefined {
  const [name, ...rest] = specifier.slice(WORKSPACE_SCOPE.length).split('/');
  for (const group of ['libs', 'apps', 'tools']) {
    const dir = join(workspaceRoot, group, name!);
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const exports = (JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: Record<string, string> | string }).exports;
    const key = rest.length === 0 ? '.' : `./${rest.join('/')}`;
    const target = typeof exports === 'string' ? (key === '.' ? exports : undefined) : exports?.[key];
    return target === undefined ? undefined : join(dir, target);
  }
  return undefined;
}

function workspaceRootOf(file: string): string {
  let dir = dirname(file);
  while (dirname(dir) !== dir) {
    if (existsSync(join(dir, 'nx.json'))) return dir;
    dir = dirname(dir);
  }
  return dirname(file);
}

/** Whether `file` or what it imports uses the test environment or root. */
export function usesTestEnvironment(file: string, seen = new Set<string>()): boolean {
  if (seen.has(file)) return false;
  seen.add(file);
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  if (ENVIRONMENT_MARKERS.some((marker) => marker.test(source))) return true;
  for (const { specifier } of findImports(source)) {
    let found: string | undefined;
    if (specifier.startsWith('.')) {
      const target = resolve(dirname(file), specifier);
      found = [target, `${target}.ts`, join(target, 'index.ts')].find((candidate) => /\.[cm]?[jt]s$/.test(candidate) && existsSync(candidate));
    } else if (specifier.startsWith(WORKSPACE_SCOPE)) {
      found = workspaceModule(specifier, workspaceRootOf(file));
    }
    if (found && isTestSupport(found) && usesTestEnvironment(found, seen)) return true;
  }
  return false;
}

function testFiles(dir: string): string[] {
  const found: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.test.ts')) found.push(path);
    }
  };
  walk(dir);
  return found.sort();
}

/** The fast lane's test files of the package at `packageDir`, relative to it. */
export function unitTestFiles(packageDir: string): string[] {
  const src = join(packageDir, 'src');
  if (!existsSync(src)) return [];
  return testFiles(src)
    .filter((file) => !usesTestEnvironment(file))
    .map((file) => relative(packageDir, file));
}
