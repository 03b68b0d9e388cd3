import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'release',
    include: ['src/**/*.test.ts'],
    // two full release builds (bundles, single executables, tarballs)
    testTimeout: 120_000,
    hookTimeout: 600_000,
  },
});
