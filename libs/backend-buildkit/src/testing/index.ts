/**
 * Test support: how the catalog holds this backend to the backend contract: dockerd's
 * embedded BuildKit on every engine set of the test environment (Docker 20.10 with BuildKit
 * 0.8, a current Docker with BuildKit 0.25), the session through the Engine's `/session` and
 * through BuildKit's `Control/Session`. The standalone buildkitd has its own contract run
 * (buildkitd.test.ts), which waits for the daemon to be built.
 */
import { inject } from 'vitest';
import type {} from '@cnb-extender/testenv';
import type { BackendContractEnvironment } from '@cnb-extender/extender-core/testing';

/** Each engine set's dockerd with each session transport. */
export function contractEnvironments(): BackendContractEnvironment[] {
  return inject('testenv').engines.flatMap(({ id, docker }) => {
    const address = `docker://${docker.socketPath}`;
    return [
      { name: `dockerd /grpc + /session on ${id} (Docker ${docker.version})`, options: { env: process.env, settings: { address } } },
      { name: `dockerd /grpc + Control/Session on ${id} (Docker ${docker.version})`, options: { env: process.env, settings: { address, sessionTransport: 'control' } } },
    ];
  });
}
