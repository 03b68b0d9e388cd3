/**
 * What a backend package declares about itself, as one typed value: its id, what it can
 * extend, whether it changes the running root filesystem, the privileges it needs, its
 * `-backend-opt` settings, what each `-extend-network` value means for it, how `-backend auto`
 * detects it, and how it is created. The catalog lists the definitions; the CLI reads kinds
 * and privileges from them before anything is created; docs/backends.md is generated from
 * them. A definition module stays light: `create` and `detect` import the implementation
 * when they are called, so a run loads only the backend it uses.
 */
import type { ExtendLayerCompression, ExtendNetwork } from '@cnb-extender/platform';
import type { BackendCapabilities, BackendPrivileges, ExtendKind, ExtenderBackend } from './backend.ts';

/** A process environment (`process.env` or a test's own). */
export type BackendEnv = Readonly<Record<string, string | undefined>>;

/**
 * How a setting's value is read:
 * - `string`: any non-empty text;
 * - `path`: a path, made absolute against the working directory;
 * - `bool`: Go's booleans (`true`, `false`, `1`, `0`, `t`, `f`, …); a bare `name` means `true`;
 * - `int`: a Go integer (`42`, `0x2a`);
 * - `choice`: one of `choices`;
 * - `cache`: a BuildKit cache entry as `buildctl --import-cache/--export-cache` take it
 *   (`type=registry,ref=…,mode=max`, `type=local,src=…`), given to the backend as `{ type, attrs }`.
 */
export type BackendSettingKind = 'string' | 'path' | 'bool' | 'int' | 'choice' | 'cache';

/** One entry of a backend's `-backend-opt name=value` table. */
export interface BackendSetting {
  /** The name in `-backend-opt name=value` (`cache-to`). */
  name: string;
  /** The backend's constructor option it sets (`cacheExports`). */
  option: string;
  kind: BackendSettingKind;
  /** Allowed values (`choice`). */
  choices?: readonly string[];
  /** May be given more than once; the option is then a list, in the order given. */
  repeatable?: boolean;
  /** One line for docs/backends.md. */
  description: string;
}

/** What a definition's `create` receives: the run's generic options, each backend maps them to its own. */
export interface BackendFactoryOptions {
  /** The process environment (backends read their own variables, e.g. `DOCKER_HOST`). */
  env: BackendEnv;
  /**
   * Where an image-producing backend writes new layer blobs. Build kind: a directory
   * outside the core's work directory, so the blobs outlive `extend()` for publishing
   * (the caller removes it). Omitted: the backend's default inside the work directory.
   */
  layerDir?: string;
  /** The network RUN gets (`-extend-network`). Omitted: the backend's own default. */
  network?: ExtendNetwork;
  /** Compression of the layers the backend writes itself (in-place). Omitted: gzip. */
  layerCompression?: ExtendLayerCompression;
  /**
   * Constructor options: from `-backend-opt` entries, already checked against `settings`
   * (tests may also set options that are no setting, such as a test root).
   */
  settings?: Readonly<Record<string, unknown>>;
}

/** What `detect` found: usable, with why (for the info line), or not, with what it would need. */
export type BackendDetection =
  | { usable: true; reason: string }
  | {
      usable: false;
      /** Why not, as a phrase the next candidate's reason follows (`not running as root`). */
      reason: string;
      /** What it would need, for the error when no backend is usable (`a usable buildah in PATH (none found)`). */
      needs: string;
    };

export interface BackendDefinition {
  /** The id platforms pass with `-backend` / `CNB_EXTEND_BACKEND`. */
  readonly id: string;
  /** One line for help texts and docs. */
  readonly description: string;
  /** Kinds it can extend; other kinds are refused before anything runs. */
  readonly kinds: readonly ExtendKind[];
  /** Whether applying a Dockerfile changes the running root filesystem (kaniko style). */
  readonly inPlace: boolean;
  /** What it needs of the process with the default network; the CLI checks it before creating the backend. */
  readonly privileges: BackendPrivileges;
  /** Linux capabilities a RUN needs on top of `privileges.capabilities` with an `-extend-network` value. */
  readonly networkCapabilities?: Readonly<Partial<Record<ExtendNetwork, readonly string[]>>>;
  /** What `-backend-opt name=value` may set, and the constructor option each sets. */
  readonly settings: readonly BackendSetting[];
  /** What each `-extend-network` value means for it (docs/backends.md). */
  readonly networks: Readonly<Record<ExtendNetwork, string>>;
  /** `-backend auto`: whether it is usable here and why; absent: never chosen automatically. */
  detect?(env: BackendEnv): Promise<BackendDetection>;
  /** Load the implementation and create the backend. */
  create(options: BackendFactoryOptions): Promise<ExtenderBackend>;
}

/** The privileges a run with `network` needs: the definition's, plus the capabilities that network asks for. */
export function requiredPrivileges(definition: Pick<BackendDefinition, 'privileges' | 'networkCapabilities'>, network: ExtendNetwork = 'default'): BackendPrivileges {
  const extra = definition.networkCapabilities?.[network] ?? [];
  const { capabilities } = definition.privileges;
  if (extra.every((name) => capabilities.includes(name))) return definition.privileges;
  return { ...definition.privileges, capabilities: [...capabilities, ...extra.filter((name) => !capabilities.includes(name))] };
}

/** A backend instance's capabilities, from its definition: only whether it keeps a layer cache is the instance's own. */
export function definedCapabilities(definition: BackendDefinition, instance: { cache: boolean; network?: ExtendNetwork }): BackendCapabilities {
  return { inPlace: definition.inPlace, kinds: definition.kinds, cache: instance.cache, privileges: requiredPrivileges(definition, instance.network) };
}
