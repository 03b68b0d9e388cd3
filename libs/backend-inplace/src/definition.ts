/**
 * The in-place backend as the catalog knows it (`@cnb-extender/backend-inplace/definition`).
 * Importing it loads nothing else: `create` and `detect` import what they need.
 */
import type { BackendDefinition } from '@cnb-extender/extender-core';
import type { InplaceBackendOptions } from './backend.ts';

export const inplaceDefinition: BackendDefinition = {
  id: 'inplace',
  description: 'kaniko-style: runs the instructions against the running container\'s root filesystem (default)',
  kinds: ['build', 'run'],
  inPlace: true,
  // setpriv/unshare --root need SETUID, SETGID and SYS_CHROOT (a default container has them);
  // on a host an extension's RUN would rewrite the machine itself
  privileges: { root: true, capabilities: ['SETUID', 'SETGID', 'SYS_CHROOT'], container: true },
  // a RUN without the network gets a network namespace of its own
  networkCapabilities: { none: ['SYS_ADMIN'] },
  settings: [
    { name: 'allow-remote', option: 'allowRemote', kind: 'bool', description: '`ADD <url>` may fetch the URL (default false: such an ADD fails the step)' },
    { name: 'cache', option: 'cache', kind: 'bool', description: 'keep the layer cache in `<extend-dir>/cache/inplace` (default true); false runs every step and ignores `-extend-cache-ttl`, and for build kind walks nothing and writes no layers, which only fed the cache' },
  ],
  networks: {
    default: 'the network of the container the extender runs in, as with the Go extender',
    none: 'a network namespace of its own with only loopback (util-linux `unshare --net`: needs util-linux in the image and `CAP_SYS_ADMIN`; without util-linux such a RUN fails rather than get the network)',
    host: 'the same as `default`: the container\'s network',
  },
  // the kaniko model: as root in a container, the container's root filesystem is the image to extend
  async detect(env) {
    const { probeContainer } = await import('@cnb-extender/extender-core');
    const root = process.getuid?.() === 0;
    const container = probeContainer(env);
    if (root && container.inContainer) return { usable: true, reason: `running as root in a container (${container.evidence}); its root filesystem is the image to extend` };
    const reason = root ? `not in a container (${container.evidence})` : 'not running as root';
    return { usable: false, reason, needs: `root inside a container (${reason})` };
  },
  async create(options) {
    const { createInplaceBackend } = await import('./backend.ts');
    return createInplaceBackend({
      ...(options.settings as Partial<InplaceBackendOptions> | undefined),
      ...(options.network ? { network: options.network !== 'none' } : {}),
      ...(options.layerCompression ? { compression: options.layerCompression } : {}),
    });
  },
};
