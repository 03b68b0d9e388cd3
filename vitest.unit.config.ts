import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { defineConfig } from 'vitest/config';
import { unitTestFiles } from './tools/ci/src/lanes.ts';

// `npm run test:unit`: the fast lane. Every package's tests that need no test environment
// (no root, daemon, registry or fixture image: see tools/ci/src/lanes.ts), without the
// environment's global setup. `npm test` runs these and all the others.
const root = import.meta.dirname;
const packages = ['libs', 'apps', 'tools'].flatMap((group) => readdirSync(join(root, group)).map((name) => join(group, name)));

export default defineConfig({
  test: {
    projects: packages.flatMap((dir) => {
      const include = unitTestFiles(join(root, dir));
      return include.length === 0 ? [] : [{ test: { name: basename(dir), root: join(root, dir), include } }];
    }),
    reporters: ['default', './tools/ci/src/summary-reporter.ts'],
  },
});
