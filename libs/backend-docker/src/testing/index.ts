/**
 * Test support: how the catalog holds this backend to the backend contract, on every engine
 * set of the test environment (Docker 20.10 with BuildKit 0.8, and a current Docker) with each
 * builder once (`auto` is BuildKit on both, engines.test.ts shows it).
 */
import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';
import type { BackendContractEnvironment } from '@cnb-extender/extender-core/testing';

/** Each engine set's dockerd with the classic builder and with BuildKit. */
export function contractEnvironments(): BackendContractEnvironment[] {
  return inject('testenv').engines.flatMap(({ id, docker }) =>
    (['classic', 'buildkit'] as const).map((builder) => ({
      name: `${builder} builder on ${id} (Docker ${docker.version})`,
      options: { env: process.env, settings: { host: docker.host, builder } },
    })),
  );
}
