import { describe, expect, it } from 'vitest';
import { chooseBackend, type AutoProbes } from './auto.ts';
import { BackendSelectionError, type BackendRegistry } from './registry.ts';

/** Probes that answer as told and record which ones were asked. */
function probes(answers: { root: boolean; container: boolean; buildah: boolean; docker: boolean }) {
  const asked: string[] = [];
  const dockerHosts: (string | undefined)[] = [];
  const p: AutoProbes = {
    isRoot: () => (asked.push('root'), answers.root),
    container: () => (asked.push('container'), { inContainer: answers.container, evidence: answers.container ? '/.dockerenv exists' : 'no container runtime marker' }),
    buildahAvailable: async () => (asked.push('buildah'), answers.buildah),
    dockerReachable: async (host) => (asked.push('docker'), dockerHosts.push(host), answers.docker),
  };
  return { probes: p, asked, dockerHosts };
}

describe('-backend auto', () => {
  it('passes any other id through unchanged, without probing', async () => {
    const { probes: p, asked } = probes({ root: true, container: true, buildah: true, docker: true });
    expect(await chooseBackend('buildkit', { probes: p })).toEqual({ id: 'buildkit', reason: '', auto: false });
    expect(asked).toEqual([]);
  });

  it('picks inplace as root inside a container', async () => {
    const { probes: p, asked } = probes({ root: true, container: true, buildah: true, docker: true });
    const choice = await chooseBackend('auto', { probes: p });
    expect(choice).toEqual({ id: 'inplace', auto: true, reason: 'running as root in a container (/.dockerenv exists); its root filesystem is the image to extend' });
    expect(asked).not.toContain('buildah');
  });

  it('picks buildah when not in a container and buildah is available', async () => {
    const { probes: p } = probes({ root: true, container: false, buildah: true, docker: true });
    const choice = await chooseBackend('auto', { probes: p });
    expect(choice.id).toBe('buildah');
    expect(choice.reason).toBe('not in a container (no container runtime marker); buildah is available');
  });

  it('picks buildah when in a container but not root', async () => {
    const { probes: p } = probes({ root: false, container: true, buildah: true, docker: false });
    const choice = await chooseBackend('auto', { probes: p });
    expect(choice).toMatchObject({ id: 'buildah', reason: 'not running as root; buildah is available' });
  });

  it('picks docker when buildah is missing and the daemon at DOCKER_HOST answers', async () => {
    const { probes: p, dockerHosts } = probes({ root: false, container: false, buildah: false, docker: true });
    const choice = await chooseBackend('auto', { probes: p, env: { DOCKER_HOST: 'unix:///run/x.sock' } });
    expect(choice).toMatchObject({ id: 'docker', reason: 'not running as root; no usable buildah; a Docker daemon answers at DOCKER_HOST=unix:///run/x.sock' });
    expect(dockerHosts).toEqual(['unix:///run/x.sock']);
  });

  it("hands the docker package's own probe the environment, so a TLS daemon (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) is probed with TLS", async () => {
    const asked: unknown[] = [];
    const registry: BackendRegistry = new Map([
      ['docker', { id: 'docker', packageName: '@example/docker', description: 'test', load: async () => ({ isDockerReachable: async (o: unknown) => (asked.push(o), true) }) }],
    ]);
    const env = { DOCKER_HOST: 'tcp://127.0.0.1:2376', DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/certs' };
    const choice = await chooseBackend('auto', { env, registry, probes: { isRoot: () => false, buildahAvailable: async () => false } });
    expect(choice).toMatchObject({ id: 'docker', reason: 'not running as root; no usable buildah; a Docker daemon answers at DOCKER_HOST=tcp://127.0.0.1:2376' });
    expect(asked).toEqual([{ host: 'tcp://127.0.0.1:2376', env: expect.objectContaining(env) }]);
  });

  it('fails with exit 3 naming every candidate when nothing is usable', async () => {
    const { probes: p } = probes({ root: true, container: false, buildah: false, docker: false });
    const err = await chooseBackend('auto', { probes: p }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendSelectionError);
    expect((err as BackendSelectionError).code).toBe(3);
    expect((err as Error).message).toBe(
      'failed to select backend: -backend auto found no usable backend: inplace needs root inside a container (not in a container (no container runtime marker)), buildah needs a usable buildah in PATH (none found), docker needs a daemon at the default Docker socket (none answered); pass -backend explicitly',
    );
  });

  it('detects the buildah of this environment for real (outside a container by override)', async () => {
    const choice = await chooseBackend('auto', { env: { CNB_EXTEND_IN_CONTAINER: 'false' } });
    expect(choice.id).toBe('buildah');
    expect(choice.reason).toMatch(/buildah is available$/);
  });

  it('picks inplace for real as root with the in-container override', async () => {
    const root = process.getuid?.() === 0;
    const choice = await chooseBackend('auto', { env: { CNB_EXTEND_IN_CONTAINER: 'true' } });
    expect(choice.id).toBe(root ? 'inplace' : 'buildah');
  });
});
