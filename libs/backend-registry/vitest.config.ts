import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'backend-registry',
    include: ['src/**/*.test.ts'],
  },
});
