import { describe, expect, it, vi } from 'vitest';
import { dockerDefinition } from './definition.ts';

// the daemon probe answers as told and records what it was asked
const probe = vi.hoisted(() => ({ reachable: true, asked: [] as unknown[] }));
vi.mock('./host.ts', () => ({ isDockerReachable: async (options: unknown) => (probe.asked.push(options), probe.reachable) }));

describe('-backend auto: the docker definition', () => {
  it('hands the probe the environment, so a TLS daemon (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) is probed with TLS', async () => {
    probe.reachable = true;
    const env = { DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' };
    expect(await dockerDefinition.detect!(env)).toEqual({ usable: true, reason: 'a Docker daemon answers at DOCKER_HOST=tcp://127.0.0.1:2376' });
    expect(probe.asked.at(-1)).toEqual({ host: 'tcp://127.0.0.1:2376', env: expect.objectContaining(env) });
  });

  it('says where no daemon answered: DOCKER_HOST, else the default socket', async () => {
    probe.reachable = false;
    expect(await dockerDefinition.detect!({})).toEqual({ usable: false, reason: 'no Docker daemon answers at the default Docker socket', needs: 'a daemon at the default Docker socket (none answered)' });
    expect(probe.asked.at(-1)).not.toHaveProperty('host');
  });
});
