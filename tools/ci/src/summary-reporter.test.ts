import { execFile } from 'node:child_process';
import { mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatSummary } from './summary-reporter.ts';

const run = promisify(execFile);
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const reporter = fileURLToPath(new URL('./summary-reporter.ts', import.meta.url));

describe('formatSummary', () => {
  it('prints the plain closing line, with skipped only when there are some', () => {
    expect(formatSummary({ passed: 3, failed: 0, skipped: 0 })).toBe('3 passed, 0 failed');
    expect(formatSummary({ passed: 1, failed: 2, skipped: 4 })).toBe('1 passed, 2 failed, 4 skipped');
  });
});

describe('SummaryReporter in a real vitest run', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'summary-reporter-'));
    await symlink(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
    await writeFile(path.join(dir, 'vitest.config.ts'), "export default { test: { include: ['*.test.ts'] } };\n");
    await writeFile(
      path.join(dir, 'mixed.test.ts'),
      [
        "import { expect, it } from 'vitest';",
        "it('passes', () => expect(1).toBe(1));",
        "it('passes too', () => expect(2).toBe(2));",
        "it('fails', () => expect(1).toBe(2));",
        "it.skip('is skipped', () => {});",
      ].join('\n'),
    );
    // A module that cannot even load has no tests: it must still count as a failure.
    await writeFile(path.join(dir, 'broken.test.ts'), "import './does-not-exist.ts';\n");
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts passed, failed, skipped and broken modules', async () => {
    const vitest = path.join(repoRoot, 'node_modules', '.bin', 'vitest');
    const result = await run(vitest, ['run', '--root', dir, '--reporter', reporter], { cwd: dir, env: { ...process.env, CI: 'true' } }).then(
      () => {
        throw new Error('the run with a failing test exited 0');
      },
      (error: { code: number; stdout: string }) => error,
    );
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^tests run on Node v\d+\.\d+\.\d+ \(linux-x64\)$/);
    expect(lines.at(-1)).toBe('2 passed, 2 failed, 1 skipped');
  }, 60_000);
});
