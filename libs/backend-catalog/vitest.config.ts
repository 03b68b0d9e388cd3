import { defineProject } from 'vitest/config';

export default defineProject({
  test: {
    name: 'backend-catalog',
    include: ['src/**/*.test.ts'],
    // the contract runs every backend against the real test environment (dockerd, buildah, registries)
    globalSetup: ['../../tools/testenv/src/global-setup.ts'],
    testTimeout: 180_000,
    hookTimeout: 120_000,
  },
});
