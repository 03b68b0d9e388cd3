// Runs the contract kit against deliberately broken backends (see contract.test.ts).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    root: import.meta.dirname,
    include: ['broken-backends.fixture.ts'],
  },
});
