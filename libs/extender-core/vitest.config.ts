import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'extender-core',
    include: ['src/**/*.test.ts'],
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
  },
});
