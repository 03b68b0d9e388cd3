/**
 * The buildah backend as the catalog knows it (`@cnb-extender/backend-buildah/definition`).
 * Importing it loads nothing else: `create` and `detect` import the implementation.
 */
import type { BackendDefinition, BackendFactoryOptions } from '@cnb-extender/extender-core';
import type { BuildahBackendOptions } from './backend.ts';

/** `env` (merged over `process.env` when given), `layerDir`, the settings and the RUN network as `BuildahBackendOptions`. */
function backendOptions(options: BackendFactoryOptions): BuildahBackendOptions {
  return {
    ...(Object.keys(options.env).length > 0 ? { env: { ...process.env, ...options.env } } : {}),
    ...(options.layerDir ? { layerDir: options.layerDir } : {}),
    ...(options.settings as Partial<BuildahBackendOptions> | undefined),
    // buildah's own default is the network it runs in, which is what `default` means here
    ...(options.network ? { network: options.network === 'none' ? 'none' : 'host' } : {}),
  };
}

export const buildahDefinition: BackendDefinition = {
  id: 'buildah',
  description: 'builds with buildah and reads the new layers back',
  kinds: ['build', 'run'],
  inPlace: false,
  // chroot isolation runs as root, or rootless in a user namespace buildah sets up itself
  privileges: { root: false, capabilities: [], container: false },
  settings: [
    { name: 'isolation', option: 'isolation', kind: 'choice', choices: ['chroot', 'oci', 'rootless'], description: '`buildah build --isolation` (default `chroot`, or `BUILDAH_ISOLATION`)' },
    {
      name: 'storage-driver',
      option: 'storageDriver',
      kind: 'choice',
      choices: ['auto', 'overlay', 'vfs'],
      description: 'storage driver in the work directory (default `auto`: overlay when it mounts there, else vfs; or `CNB_BUILDAH_STORAGE_DRIVER`)',
    },
    { name: 'layers', option: 'layers', kind: 'bool', description: '`--layers`: one layer per instruction (default true); false lets buildah squash RUNs' },
    { name: 'timestamp', option: 'timestamp', kind: 'int', description: 'seconds since the epoch for `--timestamp`: created time and file times of new layers (default `SOURCE_DATE_EPOCH`)' },
    { name: 'buildah', option: 'buildah', kind: 'path', description: 'the buildah executable (default `buildah` in `PATH`)' },
  ],
  networks: {
    default: '`--network host`: the network buildah runs in, which is the extender\'s own, as with the Go extender',
    none: 'only loopback: `--network none` with the oci and rootless isolations; chroot isolation has only the host\'s network, so buildah runs in a network namespace of its own (util-linux `unshare --net`, `CAP_SYS_ADMIN`)',
    host: '`--network host`',
  },
  async detect(env) {
    const { detectBuildah } = await import('./detect.ts');
    const found = await detectBuildah({ env: { ...process.env, ...env } }).catch(() => undefined);
    if (found?.available) return { usable: true, reason: 'buildah is available' };
    return { usable: false, reason: 'no usable buildah', needs: 'a usable buildah in PATH (none found)' };
  },
  async create(options) {
    const { BuildahBackend } = await import('./backend.ts');
    return new BuildahBackend(backendOptions(options));
  },
};
