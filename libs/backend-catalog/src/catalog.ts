/**
 * The backend catalog: every backend the extender knows, as the ordered list of the backend
 * packages' definitions (`BackendDefinition`, declared by the core). Only this package imports
 * backend packages, and only their light `./definition` entries; a definition imports its
 * implementation when the backend is created, so a run loads only the backend it uses.
 */
import type { BackendDefinition, BackendEnv, BackendFactoryOptions, ExtenderBackend } from '@cnb-extender/extender-core';
import { BackendSelectionError } from './errors.ts';
import { parseBackendSettings } from './settings.ts';

export { BackendSelectionError, SELECT_BACKEND_ACTION } from './errors.ts';

/** One backend of the catalog: its id, the package that defines it, and its definition, imported when first asked for. */
export interface CatalogEntry {
  /** The id platforms pass with `-backend` / `CNB_EXTEND_BACKEND`. */
  readonly id: string;
  /** The npm package that implements it (named when it is not part of this build). */
  readonly packageName: string;
  /** Imports the definition; rejects when the package is not part of this build. */
  definition(): Promise<BackendDefinition>;
}

/** Backends in the order `-backend auto` tries them. */
export type BackendCatalog = readonly CatalogEntry[];

/** The default backend (`inplace`), as libs/platform's input definition says. */
export const DEFAULT_BACKEND_ID = 'inplace';

/**
 * Every backend the extender knows, in the order `-backend auto` tries them. The definitions
 * are imported per id, when first needed, with literal specifiers: the release bundler
 * (tools/release/src/bundle.ts) includes the packages that exist and replaces a package that
 * is not part of a build by a module that throws when it is loaded. Imported statically, such
 * a module would fail the catalog and every backend with it; imported here, it fails only the
 * selection of its own backend ("not available in this build").
 */
export const BACKEND_CATALOG: BackendCatalog = [
  { id: 'inplace', packageName: '@cnb-extender/backend-inplace', definition: async () => (await import('@cnb-extender/backend-inplace/definition')).inplaceDefinition },
  { id: 'buildah', packageName: '@cnb-extender/backend-buildah', definition: async () => (await import('@cnb-extender/backend-buildah/definition')).buildahDefinition },
  { id: 'docker', packageName: '@cnb-extender/backend-docker', definition: async () => (await import('@cnb-extender/backend-docker/definition')).dockerDefinition },
  { id: 'buildkit', packageName: '@cnb-extender/backend-buildkit', definition: async () => (await import('@cnb-extender/backend-buildkit/definition')).buildkitDefinition },
];

/** A catalog entry for a definition at hand (tests, a backend defined in the program itself). */
export function catalogEntry(definition: BackendDefinition, packageName = `(the definition of ${definition.id})`): CatalogEntry {
  return { id: definition.id, packageName, definition: () => Promise.resolve(definition) };
}

/** The ids of a catalog, in its order. */
export function backendIds(catalog: BackendCatalog = BACKEND_CATALOG): string[] {
  return catalog.map((entry) => entry.id);
}

/** The definitions of a catalog whose packages are part of this build, in its order. */
export async function availableDefinitions(catalog: BackendCatalog = BACKEND_CATALOG): Promise<BackendDefinition[]> {
  const loaded = await Promise.all(catalog.map((entry) => entry.definition().catch(() => undefined)));
  return loaded.filter((definition) => definition !== undefined);
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether `err` says that `packageName` itself (not one of its dependencies' files) is absent. */
function isPackageMissing(err: unknown, packageName: string): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  const message = messageOf(err);
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return [`'${packageName}'`, `"${packageName}"`, `'${packageName}/`, `"${packageName}/`].some((quoted) => message.includes(quoted));
  // a single executable cannot load packages that were not bundled into it
  return code === 'ERR_UNKNOWN_BUILTIN_MODULE' || /no such built-in module/i.test(message);
}

/** The catalog entry for `id`; an unknown id is a `BackendSelectionError` naming the known ones. */
function entryFor(id: string, catalog: BackendCatalog): CatalogEntry {
  const entry = catalog.find((e) => e.id === id);
  if (!entry) throw new BackendSelectionError(id, 'unknown', `unknown backend "${id}" (known backends: ${backendIds(catalog).join(', ')})`);
  return entry;
}

/** The definition of `entry`; a package that is not part of this build (or fails to load) is a `BackendSelectionError`. */
async function definitionOf(entry: CatalogEntry): Promise<BackendDefinition> {
  const { id, packageName } = entry;
  try {
    return await entry.definition();
  } catch (err) {
    const why = isPackageMissing(err, packageName) ? `package ${packageName} is not included` : `loading ${packageName}: ${messageOf(err)}`;
    throw new BackendSelectionError(id, 'unavailable', `backend ${id} is not available in this build (${why})`, err);
  }
}

export interface SelectBackendOptions {
  catalog?: BackendCatalog;
  /** `name=value` settings for the backend (`-backend-opt`). */
  backendOpts?: readonly string[];
  /** Where `backendOpts` came from, for messages (default `-backend-opt`). */
  backendOptsSource?: string;
  /** Base of relative path settings (default `process.cwd()`). */
  cwd?: string;
}

/** A backend chosen and checked, not created yet: what the CLI's preflight reads. */
export interface SelectedBackend {
  definition: BackendDefinition;
  /** The package that defines it, for messages. */
  packageName: string;
  /** The constructor options its `-backend-opt` entries set. */
  settings: Record<string, unknown>;
}

/**
 * The definition of backend `id` with the constructor options `backendOpts` set for it.
 * Throws a `BackendSelectionError` (exit 3) that says what is wrong: an unknown id lists the
 * known ones; a package that is not in this build says so; an entry that is not `name=value`,
 * a name the backend does not have (another backend's says whose it is) or a value of the
 * wrong kind names the entry. Nothing of the backend's implementation is loaded.
 */
export async function selectBackend(id: string, options: SelectBackendOptions = {}): Promise<SelectedBackend> {
  const catalog = options.catalog ?? BACKEND_CATALOG;
  const entry = entryFor(id, catalog);
  const definition = await definitionOf(entry);
  const entries = options.backendOpts ?? [];
  const others = entries.length > 0 ? await availableDefinitions(catalog) : [];
  const settings = parseBackendSettings(definition, entries, others, {
    ...(options.backendOptsSource ? { source: options.backendOptsSource } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  return { definition, packageName: entry.packageName, settings };
}

/** What a run hands the backend it creates (see `BackendFactoryOptions`; the settings come from the selection). */
export type CreateBackendOptions = Omit<BackendFactoryOptions, 'settings' | 'env'> & { env?: BackendEnv };

function isBackend(value: unknown): value is ExtenderBackend {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v['id'] === 'string' && typeof v['apply'] === 'function' && typeof v['cleanup'] === 'function' && typeof v['capabilities'] === 'object' && v['capabilities'] !== null;
}

/**
 * Create the selected backend: its definition's `create` with the run's options and the
 * selected settings. A failure, or a result that is not a backend, is a `BackendSelectionError`.
 */
export async function createBackend(selected: SelectedBackend, options: CreateBackendOptions = {}): Promise<ExtenderBackend> {
  const { definition, packageName } = selected;
  const { id } = definition;
  const factoryOptions: BackendFactoryOptions = {
    env: options.env ?? {},
    ...(options.layerDir ? { layerDir: options.layerDir } : {}),
    ...(options.network ? { network: options.network } : {}),
    ...(options.layerCompression ? { layerCompression: options.layerCompression } : {}),
    settings: selected.settings,
  };
  let backend: unknown;
  try {
    backend = await definition.create(factoryOptions);
  } catch (err) {
    throw new BackendSelectionError(id, 'invalid', `creating backend ${id} from ${packageName}: ${messageOf(err)}`, err);
  }
  if (!isBackend(backend)) {
    throw new BackendSelectionError(id, 'invalid', `backend ${id} is not available in this build (package ${packageName} provided something that is not a backend (it needs id, capabilities, apply() and cleanup()))`);
  }
  return backend;
}

export type LoadBackendOptions = SelectBackendOptions & CreateBackendOptions;

/** `selectBackend` then `createBackend`: the backend `id`, created, with every refusal of both. */
export async function loadBackend(id: string, options: LoadBackendOptions = {}): Promise<ExtenderBackend> {
  return createBackend(await selectBackend(id, options), options);
}
