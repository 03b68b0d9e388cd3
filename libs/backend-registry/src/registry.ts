/**
 * Backend id → lazy loader. Only this package imports backend packages, and only
 * with `import()` when a backend is selected: a run never loads a backend it does
 * not use (heavy clients stay off the other paths).
 */
import type { ExtenderBackend } from '@cnb-extender/extender-core';
import { BackendSelectionError } from './errors.ts';
import { parseBackendSettings, type BackendSetting } from './settings.ts';

export { BackendSelectionError, SELECT_BACKEND_ACTION } from './errors.ts';

/** The network a RUN gets (`-extend-network`; libs/platform's `ExtendNetwork`). */
export type RunNetwork = 'default' | 'none' | 'host';

/** Compression of the layers an in-place backend writes (`-extend-layer-compression`; libs/platform's `ExtendLayerCompression`). */
export type LayerCompressionChoice = 'gzip' | 'zstd';

/** What a backend package receives when the registry creates its backend. */
export interface BackendFactoryOptions {
  /** The process environment (backends read their own settings, e.g. `DOCKER_HOST`). */
  env: Readonly<Record<string, string | undefined>>;
  /**
   * Where an image-producing backend writes new layer blobs. Build kind: a directory
   * outside the core's work directory, so the blobs outlive `extend()` for publishing
   * (the caller removes it). Omitted: the backend's default inside the work directory.
   */
  layerDir?: string;
  /** The network RUN gets; each registration maps it to its backend's option. Omitted: the backend's own default. */
  network?: RunNetwork;
  /** Compression of the layers the backend writes itself (in-place). Omitted: gzip. */
  layerCompression?: LayerCompressionChoice;
  /** Constructor options from `-backend-opt` entries, already checked against the registration's settings. */
  settings?: Readonly<Record<string, unknown>>;
}

/** `env` (merged over `process.env` when given) and `layerDir`, as the packages' option factories take them. */
function packageOptions(options: BackendFactoryOptions): { env?: NodeJS.ProcessEnv; layerDir?: string } {
  return {
    ...(Object.keys(options.env).length > 0 ? { env: { ...process.env, ...options.env } } : {}),
    ...(options.layerDir ? { layerDir: options.layerDir } : {}),
  };
}

/** A `create` hook calling the package's options factory `factory` with what `toOptions` makes of the factory options. */
function callFactory(factory: string, toOptions: (options: BackendFactoryOptions, mod: Record<string, unknown>) => Record<string, unknown>): BackendRegistration['create'] {
  return (mod, options) => {
    const create = mod[factory];
    if (typeof create !== 'function') return undefined;
    return (create as (o: Record<string, unknown>) => unknown)(toOptions(options, mod));
  };
}

/**
 * The shape a backend package's module must have. Preferred: a named `createBackend`
 * factory. Also accepted: a `default` export that is a factory or a backend object, or a
 * `backend` object.
 */
export interface BackendModule {
  createBackend?: (options: BackendFactoryOptions) => ExtenderBackend | Promise<ExtenderBackend>;
  backend?: unknown;
  default?: unknown;
}

export interface BackendRegistration {
  /** The id platforms pass with `-backend` / `CNB_EXTEND_BACKEND`. */
  id: string;
  /** The npm package that implements it. */
  packageName: string;
  /** One line for help texts and docs. */
  description: string;
  /**
   * The package's factory export when it is not `createBackend` (called with
   * `BackendFactoryOptions`).
   */
  factory?: string;
  /**
   * Creates the backend from the loaded module when the package offers neither
   * `createBackend` nor a `factory` export (e.g. only a class).
   */
  create?: (mod: Record<string, unknown>, options: BackendFactoryOptions) => unknown;
  /** What `-backend-opt name=value` may set, and the constructor option each sets. */
  settings?: readonly BackendSetting[];
  /** What each `-extend-network` value means for this backend (docs/backends.md). */
  networks?: Readonly<Record<RunNetwork, string>>;
  /** Loads the package. Rejects when the package is not part of this build. */
  load(): Promise<unknown>;
}

export type BackendRegistry = ReadonlyMap<string, BackendRegistration>;

/** The default backend (`inplace`), as libs/platform's input definition says. */
export const DEFAULT_BACKEND_ID = 'inplace';

const LOCAL_CACHE_DIR = '`<extend-dir>/cache/buildkit`';

/**
 * Every backend id the extender knows. The import specifiers are literals so the bundler
 * can include the packages that exist; the ones that do not exist yet are left out of the
 * bundle and report themselves as not available. Each registration goes through its
 * package's options factory (or class) with the settings given and the RUN network mapped
 * to the backend's own option.
 */
export const BACKENDS: BackendRegistry = new Map<string, BackendRegistration>([
  [
    'inplace',
    {
      id: 'inplace',
      packageName: '@cnb-extender/backend-inplace',
      description: 'kaniko-style: runs the instructions against the running container\'s root filesystem (default)',
      // InplaceBackendOptions
      settings: [
        { name: 'allow-remote', option: 'allowRemote', kind: 'bool', description: '`ADD <url>` may fetch the URL (default false: such an ADD fails the step)' },
        { name: 'cache', option: 'cache', kind: 'bool', description: 'keep the layer cache in `<extend-dir>/cache/inplace` (default true); false runs every step and ignores `-extend-cache-ttl`' },
      ],
      networks: {
        default: 'the network of the container the extender runs in, as with the Go extender',
        none: 'a network namespace of its own with only loopback (util-linux `unshare --net`: needs util-linux in the image and `CAP_SYS_ADMIN`; without util-linux such a RUN fails rather than get the network)',
        host: 'the same as `default`: the container\'s network',
      },
      create: callFactory('createInplaceBackend', (o) => ({
        ...o.settings,
        ...(o.network ? { network: o.network !== 'none' } : {}),
        ...(o.layerCompression ? { compression: o.layerCompression } : {}),
      })),
      load: () => import('@cnb-extender/backend-inplace' as string),
    },
  ],
  [
    'buildah',
    {
      id: 'buildah',
      packageName: '@cnb-extender/backend-buildah',
      description: 'builds with buildah and reads the new layers back',
      // BuildahBackendOptions
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
      create: callFactory('createBuildahBackend', (o) => ({ ...packageOptions(o), ...o.settings, ...(o.network ? { network: o.network === 'none' ? 'none' : 'host' } : {}) })),
      load: () => import('@cnb-extender/backend-buildah' as string),
    },
  ],
  [
    'docker',
    {
      id: 'docker',
      packageName: '@cnb-extender/backend-docker',
      description: 'builds through the Docker Engine API',
      // DockerBackendOptions
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
      create: callFactory('createDockerBackend', (o) => ({ ...packageOptions(o), ...o.settings, ...(o.network ? { network: o.network } : {}) })),
      load: () => import('@cnb-extender/backend-docker' as string),
    },
  ],
  [
    'buildkit',
    {
      id: 'buildkit',
      packageName: '@cnb-extender/backend-buildkit',
      description: 'builds through BuildKit\'s control API',
      // BuildKitBackendOptions
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
      // the package exports the BuildKitBackend class; `tls-dir` becomes the TLS files it names
      create: (mod, options) => {
        const Backend = mod['BuildKitBackend'];
        if (typeof Backend !== 'function') return undefined;
        const tlsFromDir = mod['tlsFromDir'] as ((dir: string) => unknown) | undefined;
        const settings = { ...options.settings };
        if (typeof settings['tls'] === 'string' && tlsFromDir) settings['tls'] = tlsFromDir(settings['tls']);
        return new (Backend as new (o: Record<string, unknown>) => unknown)({
          env: options.env,
          ...(options.layerDir ? { layerDir: options.layerDir } : {}),
          ...settings,
          ...(options.network ? { network: options.network } : {}),
        });
      },
      load: () => import('@cnb-extender/backend-buildkit' as string),
    },
  ],
]);

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether `err` says that `packageName` itself (not one of its dependencies' files) is absent. */
function isPackageMissing(err: unknown, packageName: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  const message = messageOf(err);
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return message.includes(`'${packageName}'`) || message.includes(`"${packageName}"`);
  // a single executable cannot load packages that were not bundled into it
  return code === 'ERR_UNKNOWN_BUILTIN_MODULE' || /no such built-in module/i.test(message);
}

function isBackend(value: unknown): value is ExtenderBackend {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['id'] === 'string' && typeof v['apply'] === 'function' && typeof v['cleanup'] === 'function' && typeof v['capabilities'] === 'object' && v['capabilities'] !== null;
}

/** What a module offers, named for error messages. */
function describeExports(mod: object): string {
  const names = Object.keys(mod).sort();
  return names.length === 0 ? 'no exports' : `exports: ${names.join(', ')}`;
}

/** The ids of a registry, in registration order. */
export function backendIds(registry: BackendRegistry = BACKENDS): string[] {
  return [...registry.keys()];
}

export interface LoadBackendOptions {
  registry?: BackendRegistry;
  env?: Readonly<Record<string, string | undefined>>;
  /** Passed to the backend's factory (see `BackendFactoryOptions.layerDir`). */
  layerDir?: string;
  /** The network RUN gets (`-extend-network`); omitted: the backend's own default. */
  network?: RunNetwork;
  /** Compression of the layers an in-place backend writes (`-extend-layer-compression`); omitted: gzip. */
  layerCompression?: LayerCompressionChoice;
  /** `name=value` settings for the backend (`-backend-opt`), checked before the package is loaded. */
  backendOpts?: readonly string[];
  /** Where `backendOpts` came from, for messages (default `-backend-opt`). */
  backendOptsSource?: string;
  /** Base of relative path settings (default `process.cwd()`). */
  cwd?: string;
}

/**
 * The constructor options `entries` set for backend `id`, checked against its registration's
 * settings: an entry that is not `name=value`, a name it does not have (or another backend's),
 * a value of the wrong kind is a `BackendSelectionError` (exit 3) naming the entry. The CLI
 * calls it (through `loadBackend`) before anything runs.
 */
export function backendSettings(id: string, entries: readonly string[], options: Omit<LoadBackendOptions, 'backendOpts' | 'env' | 'layerDir' | 'network' | 'layerCompression'> = {}): Record<string, unknown> {
  const registry = options.registry ?? BACKENDS;
  const registration = registry.get(id);
  if (!registration) throw new BackendSelectionError(id, 'unknown', `unknown backend "${id}" (known backends: ${backendIds(registry).join(', ')})`);
  return parseBackendSettings(registration, entries, registry.values(), {
    ...(options.backendOptsSource ? { source: options.backendOptsSource } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
}

/**
 * Load and create the backend for `id`. Throws a `BackendSelectionError` (exit 3) that
 * says what is missing: an unknown id lists the known ones; a setting that does not fit is
 * refused before the package is loaded; a package that is not in this build says so; a
 * package without a backend names what it does export.
 */
export async function loadBackend(id: string, options: LoadBackendOptions = {}): Promise<ExtenderBackend> {
  const registry = options.registry ?? BACKENDS;
  const registration = registry.get(id);
  if (!registration) {
    throw new BackendSelectionError(id, 'unknown', `unknown backend "${id}" (known backends: ${backendIds(registry).join(', ')})`);
  }
  const settings = backendSettings(id, options.backendOpts ?? [], options);
  let mod: unknown;
  try {
    mod = await registration.load();
  } catch (err) {
    const why = isPackageMissing(err, registration.packageName)
      ? `package ${registration.packageName} is not included`
      : `loading ${registration.packageName}: ${messageOf(err)}`;
    throw new BackendSelectionError(id, 'unavailable', `backend ${id} is not available in this build (${why})`, err);
  }
  const factoryOptions: BackendFactoryOptions = {
    env: options.env ?? {},
    ...(options.layerDir ? { layerDir: options.layerDir } : {}),
    ...(options.network ? { network: options.network } : {}),
    ...(options.layerCompression ? { layerCompression: options.layerCompression } : {}),
    settings,
  };
  const backend = await backendFromModule(mod, registration, factoryOptions).catch((err: unknown) => {
    if (err instanceof BackendSelectionError) throw err;
    throw new BackendSelectionError(id, 'invalid', `creating backend ${id} from ${registration.packageName}: ${messageOf(err)}`, err);
  });
  return backend;
}

async function backendFromModule(mod: unknown, registration: BackendRegistration, factoryOptions: BackendFactoryOptions): Promise<ExtenderBackend> {
  const { id, packageName } = registration;
  const invalid = (what: string) => new BackendSelectionError(id, 'invalid', `backend ${id} is not available in this build (package ${packageName} ${what})`);
  if (typeof mod !== 'object' || mod === null) throw invalid('is not a module');
  const m = mod as BackendModule;
  let candidate: unknown;
  const named = registration.factory === undefined ? undefined : (mod as Record<string, unknown>)[registration.factory];
  const created = registration.create ? await registration.create(mod as Record<string, unknown>, factoryOptions) : undefined;
  if (created !== undefined) candidate = created;
  else if (typeof named === 'function') candidate = await (named as (o: BackendFactoryOptions) => unknown)(factoryOptions);
  else if (typeof m.createBackend === 'function') candidate = await m.createBackend(factoryOptions);
  else if (typeof m.default === 'function') candidate = await (m.default as (o: BackendFactoryOptions) => unknown)(factoryOptions);
  else if (m.default !== undefined) candidate = m.default;
  else if (m.backend !== undefined) candidate = m.backend;
  else throw invalid(`does not export ${registration.factory ? `${registration.factory}(), ` : ''}createBackend() or a backend object; ${describeExports(mod)}`);
  if (!isBackend(candidate)) throw invalid('provided something that is not a backend (it needs id, capabilities, apply() and cleanup())');
  return candidate;
}
