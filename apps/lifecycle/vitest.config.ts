import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'lifecycle',
    include: ['src/**/*.test.ts'],
  },
});
