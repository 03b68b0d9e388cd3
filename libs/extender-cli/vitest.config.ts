import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'extender-cli',
    include: ['src/**/*.test.ts'],
    // build kind with an image backend: buildah and the loopback registry
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
