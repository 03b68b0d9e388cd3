/**
 * The Docker Engine API backend as the catalog knows it (`@cnb-extender/backend-docker/definition`).
 * Importing it loads nothing else: `create` and `detect` import the implementation (and dockerode).
 */
import type { BackendDefinition, BackendFactoryOptions } from '@cnb-extender/extender-core';
import type { DockerBackendOptions } from './backend.ts';

/** `env` (merged over `process.env` when given), `layerDir`, the settings and the RUN network as `DockerBackendOptions`. */
function backendOptions(options: BackendFactoryOptions): DockerBackendOptions {
  return {
    ...(Object.keys(options.env).length > 0 ? { env: { ...process.env, ...options.env } } : {}),
    ...(options.layerDir ? { layerDir: options.layerDir } : {}),
    ...(options.settings as Partial<DockerBackendOptions> | undefined),
    ...(options.network ? { network: options.network } : {}),
  };
}

export const dockerDefinition: BackendDefinition = {
  id: 'docker',
  description: 'builds through the Docker Engine API',
  kinds: ['build', 'run'],
  inPlace: false,
  // access to the daemon's socket is what it needs (the daemon does the privileged work)
  privileges: { root: false, capabilities: [], container: false },
  settings: [
    { name: 'host', option: 'host', kind: 'string', description: 'the daemon, `unix:///path` or `tcp://host:port` (default `DOCKER_HOST`, else `unix:///var/run/docker.sock`)' },
    { name: 'builder', option: 'builder', kind: 'choice', choices: ['auto', 'buildkit', 'classic'], description: 'the daemon\'s builder (default `auto`: BuildKit where the daemon has it; or `CNB_DOCKER_BUILDER`, `DOCKER_BUILDKIT`)' },
    { name: 'pull-base', option: 'pullBase', kind: 'bool', description: 'the daemon pulls the image to extend by its digest reference instead of being sent it (default false, or `CNB_DOCKER_PULL_BASE=1`)' },
  ],
  networks: {
    default: 'the daemon\'s default bridge network, as `docker build` gives a RUN; a daemon without one (`dockerd --bridge=none`) fails the build and asks for `host` or `none`',
    none: 'no network: only loopback',
    host: 'the network of the daemon\'s host',
  },
  async detect(env) {
    const { isDockerReachable } = await import('./host.ts');
    const host = env['DOCKER_HOST'];
    const where = host ? `DOCKER_HOST=${host}` : 'the default Docker socket';
    // the environment carries DOCKER_TLS_VERIFY / DOCKER_TLS / DOCKER_CERT_PATH for a TLS daemon
    const reachable = await isDockerReachable({ ...(host ? { host } : {}), env: { ...process.env, ...env } }).catch(() => false);
    if (reachable) return { usable: true, reason: `a Docker daemon answers at ${where}` };
    return { usable: false, reason: `no Docker daemon answers at ${where}`, needs: `a daemon at ${where} (none answered)` };
  },
  async create(options) {
    const { DockerBackend } = await import('./backend.ts');
    return new DockerBackend(backendOptions(options));
  },
};
