/**
 * Test support: how the catalog holds this backend to the backend contract, once per
 * buildah of the test environment's engine sets (Debian 12's 1.28 and a current one).
 */
import type { BackendContractEnvironment } from '@cnb-extender/extender-core/testing';
import { buildahExecutables } from '../test-engines.ts';

/** The buildah executables as contract environments (the executable is the `buildah` setting). */
export function contractEnvironments(): BackendContractEnvironment[] {
  return buildahExecutables().map(({ id, buildah }) => ({ name: id, options: { env: process.env, settings: { buildah } } }));
}
