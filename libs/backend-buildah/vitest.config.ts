import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'backend-buildah',
    include: ['src/**/*.test.ts'],
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
    // real builds: buildah, dockerd
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
