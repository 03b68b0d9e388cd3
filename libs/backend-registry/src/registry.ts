/**
 * Backend id → lazy loader. Only this package imports backend packages, and only
 * with `import()` when a backend is selected: a run never loads a backend it does
 * not use (heavy clients stay off the other paths).
 */
import type { ExtenderBackend } from '@cnb-extender/extender-core';
import { EXIT_CODES, LifecycleError } from '@cnb-extender/platform';

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
}

/** The settings the backend packages' own factories take (`createBuildahBackend`, …). */
function packageOptions(options: BackendFactoryOptions): { env?: NodeJS.ProcessEnv; layerDir?: string } {
  return {
    ...(Object.keys(options.env).length > 0 ? { env: { ...process.env, ...options.env } } : {}),
    ...(options.layerDir ? { layerDir: options.layerDir } : {}),
  };
}

/** A `create` hook calling the package's options factory when a `layerDir` is asked for. */
function withLayerDir(factory: string): BackendRegistration['create'] {
  return (mod, options) => {
    const create = mod[factory];
    if (!options.layerDir || typeof create !== 'function') return undefined; // the package's createBackend({ env })
    return (create as (o: ReturnType<typeof packageOptions>) => unknown)(packageOptions(options));
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
  /** Loads the package. Rejects when the package is not part of this build. */
  load(): Promise<unknown>;
}

export type BackendRegistry = ReadonlyMap<string, BackendRegistration>;

/** The default backend (`inplace`), as libs/platform's input definition says. */
export const DEFAULT_BACKEND_ID = 'inplace';

/**
 * Every backend id the extender knows. The import specifiers are literals so the bundler
 * can include the packages that exist; the ones that do not exist yet are left out of the
 * bundle and report themselves as not available.
 */
export const BACKENDS: BackendRegistry = new Map<string, BackendRegistration>([
  [
    'inplace',
    {
      id: 'inplace',
      packageName: '@cnb-extender/backend-inplace',
      factory: 'createInplaceBackend',
      description: 'kaniko-style: runs the instructions against the running container\'s root filesystem (default)',
      load: () => import('@cnb-extender/backend-inplace' as string),
    },
  ],
  [
    'buildah',
    {
      id: 'buildah',
      packageName: '@cnb-extender/backend-buildah',
      create: withLayerDir('createBuildahBackend'),
      description: 'builds with buildah and reads the new layers back',
      load: () => import('@cnb-extender/backend-buildah' as string),
    },
  ],
  [
    'docker',
    {
      id: 'docker',
      packageName: '@cnb-extender/backend-docker',
      create: withLayerDir('createDockerBackend'),
      description: 'builds through the Docker Engine API',
      load: () => import('@cnb-extender/backend-docker' as string),
    },
  ],
  [
    'buildkit',
    {
      id: 'buildkit',
      packageName: '@cnb-extender/backend-buildkit',
      // the package exports the BuildKitBackend class (options: { env, address, layerDir, … })
      create: (mod, options) => {
        const Backend = mod['BuildKitBackend'];
        if (typeof Backend !== 'function') return undefined;
        return new (Backend as new (o: { env: BackendFactoryOptions['env']; layerDir?: string }) => unknown)({
          env: options.env,
          ...(options.layerDir ? { layerDir: options.layerDir } : {}),
        });
      },
      description: 'builds through BuildKit\'s control API',
      load: () => import('@cnb-extender/backend-buildkit' as string),
    },
  ],
]);

/** The action of every selection error: `failed to select backend: …`. */
export const SELECT_BACKEND_ACTION = 'select backend';

/**
 * A backend cannot be used: the id is unknown, its package is not part of this build, or
 * the package does not provide a backend. Exit code 3 (invalid arguments): the phase has
 * not started, nothing was changed, and the platform must pass another `-backend`.
 */
export class BackendSelectionError extends LifecycleError {
  override name = 'BackendSelectionError';
  readonly backendId: string;
  readonly reason: 'unknown' | 'unavailable' | 'invalid';

  constructor(backendId: string, reason: 'unknown' | 'unavailable' | 'invalid', message: string, cause?: unknown) {
    super(EXIT_CODES.invalidArgs, `failed to ${SELECT_BACKEND_ACTION}: ${message}`, { action: SELECT_BACKEND_ACTION, ...(cause === undefined ? {} : { cause }) });
    this.backendId = backendId;
    this.reason = reason;
  }
}

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
}

/**
 * Load and create the backend for `id`. Throws a `BackendSelectionError` (exit 3) that
 * says what is missing: an unknown id lists the known ones; a package that is not in this
 * build says so; a package without a backend names what it does export.
 */
export async function loadBackend(id: string, options: LoadBackendOptions = {}): Promise<ExtenderBackend> {
  const registry = options.registry ?? BACKENDS;
  const registration = registry.get(id);
  if (!registration) {
    throw new BackendSelectionError(id, 'unknown', `unknown backend "${id}" (known backends: ${backendIds(registry).join(', ')})`);
  }
  let mod: unknown;
  try {
    mod = await registration.load();
  } catch (err) {
    const why = isPackageMissing(err, registration.packageName)
      ? `package ${registration.packageName} is not included`
      : `loading ${registration.packageName}: ${messageOf(err)}`;
    throw new BackendSelectionError(id, 'unavailable', `backend ${id} is not available in this build (${why})`, err);
  }
  const factoryOptions: BackendFactoryOptions = { env: options.env ?? {}, ...(options.layerDir ? { layerDir: options.layerDir } : {}) };
  const backend = await backendFromModule(mod, registration, factoryOptions).catch((err: unknown) => {
    if (err instanceof BackendSelectionError) throw err;
    throw new BackendSelectionError(id, 'invalid', `creating backend ${id} from ${registration.packageName}: ${messageOf(err)}`, err);
  });
  return backend;
}

async function backendFromModule(mod: unknown, registration: BackendRegistration, factoryOptions: BackendFactoryOptions): Promise<ExtenderBackend> {
  const { env } = factoryOptions;
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
