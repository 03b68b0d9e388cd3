/**
 * `-backend auto`: pick a backend for the environment the extender runs in.
 *
 * 1. `inplace` when running as root inside a container: the kaniko model, where the
 *    container's root filesystem is the image to extend (the platform runs the extender in
 *    the build or run image, as the lifecycle does);
 * 2. else `buildah` when a usable buildah is in `PATH`;
 * 3. else `docker` when a Docker daemon answers at `DOCKER_HOST` (default socket; TLS as
 *    `DOCKER_TLS_VERIFY` / `DOCKER_TLS` / `DOCKER_CERT_PATH` say);
 * 4. else a `BackendSelectionError` (exit 3) that says what was looked for.
 *
 * The probes are injectable for tests; the defaults load the backend packages' own
 * detection (`isBuildahAvailable`, `isDockerReachable`) through the registry, lazily.
 */
import { probeContainer, type ContainerProbe } from '@cnb-extender/extender-core';
import { BACKENDS, BackendSelectionError, type BackendRegistry } from './registry.ts';

/** The id that asks for automatic selection. */
export const AUTO_BACKEND_ID = 'auto';

export interface AutoProbes {
  container(): ContainerProbe;
  isRoot(): boolean;
  buildahAvailable(): Promise<boolean>;
  dockerReachable(host: string | undefined): Promise<boolean>;
}

export interface BackendChoice {
  /** The backend to load. */
  id: string;
  /** Why, for the info line (`auto` only; empty when the id was given). */
  reason: string;
  auto: boolean;
}

export interface ChooseBackendOptions {
  env?: Readonly<Record<string, string | undefined>>;
  registry?: BackendRegistry;
  /** Where the container probe looks (default `/`). */
  containerProbeRoot?: string;
  probes?: Partial<AutoProbes>;
}

async function detector(registry: BackendRegistry, id: string, name: string): Promise<((...args: never[]) => Promise<boolean>) | undefined> {
  const registration = registry.get(id);
  if (!registration) return undefined;
  try {
    const mod = (await registration.load()) as Record<string, unknown>;
    const fn = mod[name];
    return typeof fn === 'function' ? (fn as (...args: never[]) => Promise<boolean>) : undefined;
  } catch {
    return undefined; // not in this build: not available
  }
}

function defaultProbes(env: Readonly<Record<string, string | undefined>>, registry: BackendRegistry, root: string | undefined): AutoProbes {
  return {
    container: () => probeContainer(env, root),
    isRoot: () => process.getuid?.() === 0,
    buildahAvailable: async () => {
      const detect = (await detector(registry, 'buildah', 'isBuildahAvailable')) as ((o: { env: NodeJS.ProcessEnv }) => Promise<boolean>) | undefined;
      return detect ? detect({ env: { ...process.env, ...env } }).catch(() => false) : false;
    },
    dockerReachable: async (host) => {
      // the environment carries DOCKER_TLS_VERIFY / DOCKER_TLS / DOCKER_CERT_PATH for a TLS daemon
      const detect = (await detector(registry, 'docker', 'isDockerReachable')) as ((o: { host?: string; env: NodeJS.ProcessEnv }) => Promise<boolean>) | undefined;
      return detect ? detect({ ...(host ? { host } : {}), env: { ...process.env, ...env } }).catch(() => false) : false;
    },
  };
}

/**
 * Resolve `-backend`: any id but `auto` is returned as given (`loadBackend` validates it);
 * `auto` is decided as the module doc says.
 */
export async function chooseBackend(id: string, options: ChooseBackendOptions = {}): Promise<BackendChoice> {
  if (id !== AUTO_BACKEND_ID) return { id, reason: '', auto: false };
  const env = options.env ?? {};
  const registry = options.registry ?? BACKENDS;
  const probes: AutoProbes = { ...defaultProbes(env, registry, options.containerProbeRoot), ...options.probes };
  const root = probes.isRoot();
  const container = probes.container();
  if (root && container.inContainer) {
    return { id: 'inplace', auto: true, reason: `running as root in a container (${container.evidence}); its root filesystem is the image to extend` };
  }
  const notInplace = root ? `not in a container (${container.evidence})` : 'not running as root';
  if (await probes.buildahAvailable()) return { id: 'buildah', auto: true, reason: `${notInplace}; buildah is available` };
  const host = env['DOCKER_HOST'];
  const where = host ? `DOCKER_HOST=${host}` : 'the default Docker socket';
  if (await probes.dockerReachable(host)) return { id: 'docker', auto: true, reason: `${notInplace}; no usable buildah; a Docker daemon answers at ${where}` };
  throw new BackendSelectionError(
    AUTO_BACKEND_ID,
    'unavailable',
    `-backend auto found no usable backend: inplace needs root inside a container (${notInplace}), buildah needs a usable buildah in PATH (none found), docker needs a daemon at ${where} (none answered); pass -backend explicitly`,
  );
}
