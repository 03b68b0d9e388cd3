import { defineConfig } from 'vitest/config';
import BuildkitdLastSequencer from './tools/ci/src/sequencer.ts';

// One vitest run over every package. Each package has its own vitest.config.ts;
// packages that need the real test environment (registries, dockerd, fixture
// images) list tools/testenv's global setup there.
export default defineConfig({
  test: {
    projects: ['libs/*/vitest.config.ts', 'apps/*/vitest.config.ts', 'tools/*/vitest.config.ts', 'e2e*/vitest.config.ts'],
    reporters: ['default', './tools/ci/src/summary-reporter.ts'],
    // Most files wait on daemons (dockerd, buildah, buildkitd, registries) more than they
    // compute: three at a time keep a 2-core machine busy (vitest's default is cores - 1).
    maxWorkers: 3,
    sequence: { sequencer: BuildkitdLastSequencer },
  },
});
