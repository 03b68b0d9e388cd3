import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'release',
    include: ['src/**/*.test.ts'],
    // the packaged artifacts also run in containers of the test environment's dockerd
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
    // two full release builds (bundles, single executables, tarballs)
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
