import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'extender-cli',
    include: ['src/**/*.test.ts'],
  },
});
