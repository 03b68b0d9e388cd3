import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { listWorkspacePackages } from './workspace.ts';

const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

/** The packages a changeset's front matter bumps. */
function bumpedPackages(text: string): string[] {
  const front = /^---\n([\s\S]*?)\n---/.exec(text)?.[1] ?? '';
  return [...front.matchAll(/^\s*["']?([^"':]+)["']?\s*:\s*(?:major|minor|patch)\s*$/gm)].map((m) => m[1]!);
}

describe('changesets', () => {
  it('bump only the packages users get (the apps), so their prose lands in changelogs people read', async () => {
    const shipped = (await listWorkspacePackages(repoRoot)).filter((pkg) => pkg.tags.includes('type:app')).map((pkg) => pkg.name);
    expect(shipped.sort()).toEqual(['@cnb-extender/extender', '@cnb-extender/lifecycle']);
    const dir = path.join(repoRoot, '.changeset');
    const wrong: string[] = [];
    for (const file of (await readdir(dir)).filter((name) => name.endsWith('.md') && name !== 'README.md')) {
      const bumped = bumpedPackages(await readFile(path.join(dir, file), 'utf8'));
      if (bumped.length === 0) wrong.push(`${file}: bumps nothing`);
      for (const name of bumped.filter((name) => !shipped.includes(name))) wrong.push(`${file}: ${name} is not shipped`);
    }
    expect(wrong).toEqual([]);
  });
});
