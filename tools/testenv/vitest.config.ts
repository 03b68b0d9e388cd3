import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'testenv',
    include: ['src/**/*.test.ts'],
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
    // These tests drive real daemons; on a loaded 2-core machine a docker run can take seconds.
    testTimeout: 60_000,
  },
});
