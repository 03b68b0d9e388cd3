import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'extender',
    include: ['src/**/*.test.ts'],
  },
});
