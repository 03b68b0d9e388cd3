import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { findImports } from './imports.ts';
import { listSourceFiles, listWorkspacePackages, type WorkspacePackage } from './workspace.ts';

/** A forbidden dependency between two workspace packages. */
export interface BoundaryViolation {
  /** File relative to the workspace root. */
  file: string;
  line: number;
  from: string;
  to: string;
  rule: string;
}

function hasTag(pkg: WorkspacePackage, tag: string): boolean {
  return pkg.tags.includes(tag);
}

function isBackend(pkg: WorkspacePackage): boolean {
  return hasTag(pkg, 'type:backend');
}

/**
 * The module boundaries of the repository. Returns the rule broken by an import
 * of `to` from `from`, or undefined when the import is allowed.
 */
export function brokenRule(from: WorkspacePackage, to: WorkspacePackage, inTestCode = false): string | undefined {
  if (from.name === to.name) return undefined;
  // Tests and benchmarks may use the test environment and other tools.
  if (inTestCode && hasTag(to, 'type:tool')) return undefined;
  if (hasTag(to, 'type:app')) return 'nothing imports an app (share code through a lib)';
  if (hasTag(to, 'type:cli') && !['type:cli', 'type:app', 'type:tool', 'type:e2e'].some((tag) => hasTag(from, tag))) {
    return 'only the apps import the CLI layer (a library never reads its error-code → exit-code table)';
  }
  if (hasTag(from, 'type:core') && isBackend(to)) return 'extender-core never imports a backend';
  if (isBackend(from) && isBackend(to)) return 'a backend never imports another backend';
  if (hasTag(from, 'type:util') && !hasTag(to, 'type:util')) return 'a util lib imports only util libs';
  if (hasTag(from, 'type:core') && !hasTag(to, 'type:util')) return 'extender-core imports only util libs';
  if (isBackend(to) && !(hasTag(from, 'type:composition') || hasTag(from, 'type:tool') || hasTag(from, 'type:e2e'))) {
    return 'backends are loaded through the backend catalog, not imported directly';
  }
  return undefined;
}

/** Test files, benchmarks and vitest configs: code that never ships. */
export function isTestCode(relativeFile: string): boolean {
  return /\.(test|bench)\.[cm]?ts$/.test(relativeFile) || /(^|\/)(bench|test)\//.test(relativeFile) || /vitest\.config\.[cm]?ts$/.test(relativeFile);
}

/** Test code and the modules that support it: a package's `testing/` entry, `test-*.ts` helpers. */
export function isTestSupport(relativeFile: string): boolean {
  return isTestCode(relativeFile) || /(?:^|\/)testing\//.test(relativeFile) || /(?:^|\/)test-[^/]+\.ts$/.test(relativeFile);
}

/** The workspace package a specifier names (`@scope/pkg`, `@scope/pkg/sub`), if any. */
function packageForSpecifier(specifier: string, byName: Map<string, WorkspacePackage>): WorkspacePackage | undefined {
  const parts = specifier.split('/');
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
  return byName.get(name);
}

/** The workspace package a file path lies in, if any. */
function packageForPath(relativeFile: string, packages: WorkspacePackage[]): WorkspacePackage | undefined {
  return packages.find((pkg) => relativeFile === pkg.dir || relativeFile.startsWith(`${pkg.dir}/`));
}

/** Check every import in every workspace package under `root`. */
export async function checkBoundaries(root: string): Promise<BoundaryViolation[]> {
  const packages = await listWorkspacePackages(root);
  const byName = new Map(packages.map((pkg) => [pkg.name, pkg]));
  const violations: BoundaryViolation[] = [];
  for (const from of packages) {
    for (const file of await listSourceFiles(root, from)) {
      const relativeFile = path.relative(root, file).split(path.sep).join('/');
      const inTestCode = isTestCode(relativeFile);
      for (const site of findImports(await readFile(file, 'utf8'))) {
        let to: WorkspacePackage | undefined;
        if (site.specifier.startsWith('.')) {
          const target = path.relative(root, path.resolve(path.dirname(file), site.specifier)).split(path.sep).join('/');
          to = packageForPath(target, packages);
          if (to && to.name !== from.name) {
            violations.push({
              file: relativeFile,
              line: site.line,
              from: from.name,
              to: to.name,
              rule: 'import another package by its name, not by a relative path into it',
            });
            continue;
          }
        } else {
          to = packageForSpecifier(site.specifier, byName);
        }
        if (!to) continue;
        const rule = brokenRule(from, to, inTestCode);
        if (rule) violations.push({ file: relativeFile, line: site.line, from: from.name, to: to.name, rule });
        else if (to.name !== from.name && !from.dependencies.includes(to.name)) {
          violations.push({
            file: relativeFile,
            line: site.line,
            from: from.name,
            to: to.name,
            rule: `${to.name} is imported but not declared in ${from.dir}/package.json`,
          });
        }
      }
    }
  }
  return violations;
}

export function formatViolation(v: BoundaryViolation): string {
  return `${v.file}:${v.line}: ${v.from} imports ${v.to}: ${v.rule}`;
}

/** A package whose tsconfig.json references differ from the workspace packages its package.json declares. */
export interface ReferenceMismatch {
  dir: string;
  /** Declared in package.json, not referenced. */
  missing: string[];
  /** Referenced, not declared. */
  extra: string[];
}

/**
 * `tsc -b` builds a package after the ones its tsconfig.json references; npm links the ones
 * its package.json declares. The two lists name the same workspace packages, or one drifts.
 */
export async function checkReferences(root: string): Promise<ReferenceMismatch[]> {
  const packages = await listWorkspacePackages(root);
  const byName = new Map(packages.map((pkg) => [pkg.name, pkg]));
  const mismatches: ReferenceMismatch[] = [];
  for (const pkg of packages) {
    const tsconfig = await readFile(path.join(root, pkg.dir, 'tsconfig.json'), 'utf8').catch(() => undefined);
    if (tsconfig === undefined) continue;
    const references = ((JSON.parse(tsconfig) as { references?: { path: string }[] }).references ?? []).map((ref) =>
      path.relative(root, path.resolve(root, pkg.dir, ref.path)).split(path.sep).join('/'),
    );
    const declared = pkg.dependencies.flatMap((name) => {
      const dep = byName.get(name);
      return dep ? [dep.dir] : [];
    });
    const missing = declared.filter((dir) => !references.includes(dir)).sort();
    const extra = references.filter((dir) => !declared.includes(dir)).sort();
    if (missing.length > 0 || extra.length > 0) mismatches.push({ dir: pkg.dir, missing, extra });
  }
  return mismatches;
}

export function formatReferenceMismatch(m: ReferenceMismatch): string {
  const parts = [...m.missing.map((dir) => `${dir} is declared in package.json but not referenced`), ...m.extra.map((dir) => `${dir} is referenced but not declared in package.json`)];
  return `${m.dir}/tsconfig.json: ${parts.join('; ')}`;
}
