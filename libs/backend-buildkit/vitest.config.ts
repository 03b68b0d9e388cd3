import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'backend-buildkit',
    include: ['src/**/*.test.ts'],
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
  },
});
