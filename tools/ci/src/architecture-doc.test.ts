import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listWorkspacePackages } from './workspace.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** The package directories the package map of docs/architecture.md names (`libs/oci`, `e2e/`). */
function namedPackages(doc: string): string[] {
  const map = doc.slice(doc.indexOf('## Package map'), doc.indexOf('\n## ', doc.indexOf('## Package map') + 1));
  const dirs = new Set<string>();
  for (const row of map.split('\n').filter((line) => line.startsWith('| `'))) {
    const firstCell = row.split('|')[1] ?? '';
    for (const match of firstCell.matchAll(/`([^`]+)`/g)) dirs.add(match[1]!.replace(/\/$/, ''));
  }
  return [...dirs].sort();
}

describe('docs/architecture.md', () => {
  it('names every workspace package in its package map, and only packages that exist', async () => {
    const doc = await readFile(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8');
    const packages = (await listWorkspacePackages(repoRoot)).map((pkg) => pkg.dir).sort();
    expect(namedPackages(doc)).toEqual(packages);
  });

  it('names only source files that exist', async () => {
    const doc = await readFile(path.join(repoRoot, 'docs', 'architecture.md'), 'utf8');
    const files = [...doc.matchAll(/`((?:libs|apps|tools|e2e)\/[^`\s]+\.(?:ts|json|md))`/g)].map((m) => m[1]!);
    const missing: string[] = [];
    for (const file of files) {
      if (!(await readFile(path.join(repoRoot, file)).then(() => true, () => false))) missing.push(file);
    }
    expect(missing).toEqual([]);
  });
});
