import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'buildkit-session',
    include: ['src/**/*.test.ts'],
  },
});
