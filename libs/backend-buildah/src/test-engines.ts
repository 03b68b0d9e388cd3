/**
 * Test support: the buildah executables the backend's tests run against, one
 * per engine set of the test environment (Debian 12's buildah 1.28 and a
 * current one, 1.43). Each test file declares its suites once per entry
 * (`describe.each`), so every test runs on every buildah listed here.
 */
import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';

export interface BuildahExecutable {
  /** Short name for test titles: the engine set (`debian12`, `current`) and the version. */
  id: string;
  /** The executable handed to the backend as its `buildah` option. */
  buildah: string;
}

/** The buildah executables to run the tests against (see module doc). */
export function buildahExecutables(): BuildahExecutable[] {
  return inject('testenv').engines.map((e) => ({ id: `${e.id}, buildah ${e.buildah.version}`, buildah: e.buildah.executable }));
}
