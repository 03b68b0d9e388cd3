/**
 * Typed access to the test environment (`tools/testenv`'s vitest global setup,
 * `inject('testenv')`) without importing that tool package: only the fields
 * this package's tests and the contract kit use.
 */
import { inject } from 'vitest';

export interface TestEnvImage {
  layoutDir: string;
  layoutTag: string;
  manifestDigest: string;
  registryRef: string;
  dockerRef: string;
}

export interface TestEnvSubset {
  registry: { host: string; url: string };
  secureRegistry: { host: string; url: string; caFile: string; certsDir: string; username: string; password: string };
  fixtures: { build: TestEnvImage; run: TestEnvImage };
}

/** The provided test environment; throws a clear error when the global setup is missing. */
export function testEnv(): TestEnvSubset {
  const env = (inject as unknown as (key: string) => TestEnvSubset | undefined)('testenv');
  if (!env) throw new Error('no test environment: add tools/testenv/src/global-setup.ts to the vitest globalSetup of this project');
  return env;
}
