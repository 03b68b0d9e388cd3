/**
 * The BuildKit backend as the catalog knows it (`@cnb-extender/backend-buildkit/definition`).
 * Importing it loads nothing else: `create` imports the implementation.
 */
import type { BackendDefinition } from '@cnb-extender/extender-core';

const LOCAL_CACHE_DIR = '`<extend-dir>/cache/buildkit`';

export const buildkitDefinition: BackendDefinition = {
  id: 'buildkit',
  description: 'builds through BuildKit\'s control API',
  kinds: ['build', 'run'],
  inPlace: false,
  // a connection to the daemon is what it needs (the daemon does the privileged work)
  privileges: { root: false, capabilities: [], container: false },
  settings: [
    { name: 'address', option: 'address', kind: 'string', description: 'the daemon: `docker://…`, `unix://…`, `tcp://…` (default `BUILDKIT_HOST`, else `docker://`)' },
    { name: 'tls-dir', option: 'tls', kind: 'path', description: 'TLS to a `tcp://` daemon: the directory of `ca.pem`, `cert.pem` and `key.pem` (as `buildctl --tlsdir`)' },
    { name: 'engine', option: 'engine', kind: 'string', description: 'the Docker Engine the daemon\'s `moby` exporter writes into, when the address is not itself `docker://`' },
    {
      name: 'intermediate-repository',
      option: 'intermediateRepository',
      kind: 'string',
      description: 'standalone buildkitd: a repository each Dockerfile\'s result is also pushed to (not needed for a group of Dockerfiles: each builds on the previous one through the session)',
    },
    { name: 'session-transport', option: 'sessionTransport', kind: 'choice', choices: ['docker', 'control'], description: '`docker://` addresses: the session through the Engine\'s `/session` (`docker`, default) or BuildKit\'s `Control/Session`' },
    { name: 'base-from', option: 'baseFrom', kind: 'choice', choices: ['session', 'registry'], description: 'standalone buildkitd: the base served by the extender through the session (`session`, default) or pulled by the daemon itself (`registry`)' },
    { name: 'platform', option: 'platform', kind: 'string', description: '`os/arch[/variant]` to build for (default: the daemon\'s)' },
    { name: 'no-cache', option: 'noCache', kind: 'bool', description: 'ignore the daemon\'s build cache for every step' },
    {
      name: 'cache-from',
      option: 'cacheImports',
      kind: 'cache',
      repeatable: true,
      description: `a cache to import, as \`buildctl --import-cache\`: \`type=registry,ref=<repository>\`, \`type=local[,src=<dir>]\` (default dir ${LOCAL_CACHE_DIR})`,
    },
    {
      name: 'cache-to',
      option: 'cacheExports',
      kind: 'cache',
      repeatable: true,
      description: `a cache to export, as \`buildctl --export-cache\`: \`type=registry,ref=<repository>[,mode=max]\`, \`type=local[,dest=<dir>][,mode=max]\` (default dir ${LOCAL_CACHE_DIR}), \`type=inline\``,
    },
  ],
  networks: {
    default: 'the daemon\'s default network for a RUN: dockerd\'s bridge (a dockerd without one, `--bridge=none`, fails such a RUN), a standalone buildkitd\'s worker network (host, or CNI when configured)',
    none: 'only loopback',
    host: 'the network of the daemon\'s host (the `network.host` entitlement: dockerd grants it, buildkitd needs `--allow-insecure-entitlement network.host`)',
  },
  async create(options) {
    const [{ BuildKitBackend }, { tlsFromDir }] = await Promise.all([import('./backend.ts'), import('@cnb-extender/buildkit-session')]);
    const settings: Record<string, unknown> = { ...options.settings };
    // `tls-dir` names a directory; the backend takes the TLS files in it
    if (typeof settings['tls'] === 'string') settings['tls'] = tlsFromDir(settings['tls']);
    return new BuildKitBackend({
      env: options.env,
      ...(options.layerDir ? { layerDir: options.layerDir } : {}),
      ...settings,
      ...(options.network ? { network: options.network } : {}),
    });
  },
};
