import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'backend-buildkit',
    include: ['src/**/*.test.ts'],
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
    // these tests drive real daemons and processes; three files at a time on 2 cores can take a loaded machine past vitest's 5 s
    testTimeout: 60_000,
  },
});
