import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'e2e',
    include: ['src/**/*.test.ts'],
    globalSetup: ['../tools/testenv/src/global-setup.ts'],
    // real builds through five backends
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
