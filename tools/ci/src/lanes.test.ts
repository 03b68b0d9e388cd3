import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unitTestFiles } from './lanes.ts';

const root = mkdtempSync(join(tmpdir(), 'lanes-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The fixtures spell the markers in capitals, so this file does not read as one that uses them.
const MARKERS: [string, string][] = [
  ['INJECT', 'inject'],
  ['TESTENV_PACKAGE', ['@cnb-extender', 'testenv'].join('/')],
  ['START_TEST_ENV', 'startTestEnv'],
  ['REQUIRE_ROOT', 'requireRoot'],
  ['CHOWN', 'chown'],
  ['LANE_SYSTEM', '// test lane: system'],
];

function write(path: string, text: string): void {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), MARKERS.reduce((out, [token, marker]) => out.replaceAll(token, marker), text));
}

describe('the fast test lane', () => {
  write('nx.json', '{}');
  write('libs/kit/package.json', JSON.stringify({ name: '@cnb-extender/kit', exports: { '.': './src/index.ts', './testing': './src/testing/index.ts' } }));
  write('libs/kit/src/index.ts', "import { CHOWN } from 'node:fs/promises';\nexport const own = () => CHOWN('/x', 0, 0);\n");
  write('libs/kit/src/testing/index.ts', "export { registry } from './env.ts';\n");
  write('libs/kit/src/testing/env.ts', "import { INJECT } from 'vitest';\nexport const registry = () => (INJECT as any)('testenv').registry;\n");
  write('libs/pkg/src/pure.test.ts', "import { own } from '@cnb-extender/kit';\nimport { helper } from './test-helper.ts';\n");
  write('libs/pkg/src/test-helper.ts', 'export const helper = 1;\n');
  write('libs/pkg/src/env.test.ts', "import { INJECT } from 'vitest';\nconst env = INJECT('testenv');\n");
  write('libs/pkg/src/through-kit.test.ts', "import { registry } from '@cnb-extender/kit/testing';\n");
  write('libs/pkg/src/through-helper.test.ts', "import { start } from './test/start.ts';\n");
  write('libs/pkg/src/test/start.ts', "import { START_TEST_ENV } from 'TESTENV_PACKAGE';\nexport const start = START_TEST_ENV;\n");
  write('libs/pkg/src/root.test.ts', "import { helper } from './test-helper.ts';\nREQUIRE_ROOT('this');\n");
  write('libs/pkg/src/marked.test.ts', 'LANE_SYSTEM (runs the CLI as root)\nimport { it } from "vitest";\n');
  write('libs/pkg/src/cycle.test.ts', "import './a.test-support.ts';\n");

  it('keeps the files that need neither the environment nor root, however far a test support module reaches', () => {
    expect(unitTestFiles(join(root, 'libs', 'pkg'))).toEqual(['src/cycle.test.ts', 'src/pure.test.ts']);
  });

  it('reads production modules not at all: they chown on purpose, whichever test calls them', () => {
    expect(unitTestFiles(join(root, 'libs', 'pkg'))).toContain('src/pure.test.ts');
  });

  it('has nothing for a package without sources', () => {
    expect(unitTestFiles(join(root, 'libs', 'none'))).toEqual([]);
  });
});
