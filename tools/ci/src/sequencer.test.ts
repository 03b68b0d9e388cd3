import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { SLOW_FILES, slowRank, waitsForBuildkitd } from './sequencer.ts';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));

function testFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name === 'dist' || entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

describe('the test sequencer', () => {
  it('tells a file that waits for the standalone buildkitd at its top from one that waits later, or not at all', () => {
    expect(waitsForBuildkitd("const env = inject('testenv');\nconst bk = await waitForBuildkitd(env);\n")).toBe(true);
    expect(waitsForBuildkitd('beforeAll(async () => {\n  const bk = await waitForBuildkitd(env);\n});\n')).toBe(false);
    expect(waitsForBuildkitd("import { waitForBuildkitd } from './types.ts';\n")).toBe(false);
  });

  it('schedules last exactly the repository files that would hold a worker while buildkitd is built', () => {
    const late = ['libs', 'tools', 'e2e', 'apps']
      .flatMap((d) => testFiles(join(ROOT, d)))
      .filter((f) => waitsForBuildkitd(readFileSync(f, 'utf8')))
      .map((f) => relative(ROOT, f))
      .sort();
    expect(late).toEqual(['e2e/src/docs-examples.test.ts', 'libs/backend-buildkit/src/buildkitd.test.ts', 'tools/testenv/src/buildkitd.test.ts']);
  });

  it('starts the files known to be slowest first, longest first, and every one of them exists', () => {
    for (const [path] of SLOW_FILES) expect(existsSync(join(ROOT, path)), path).toBe(true);
    const seconds = SLOW_FILES.map(([, s]) => s);
    expect(seconds).toEqual([...seconds].sort((a, b) => b - a));
    expect(slowRank(join(ROOT, 'libs/backend-catalog/src/contract.test.ts'))).toBe(0);
    // files that wait for the standalone buildkitd part-way keep vitest's order
    expect(slowRank(join(ROOT, 'e2e/src/differential.test.ts'))).toBe(-1);
    expect(slowRank(join(ROOT, 'libs/oci/src/model.test.ts'))).toBe(-1);
  });
});
