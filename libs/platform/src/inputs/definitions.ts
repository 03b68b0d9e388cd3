/**
 * One definition per platform input: flag, env var, default, since-version, deprecated
 * aliases, description and kind. Help texts, docs, the resolver and the argv parser all
 * read these; nothing else spells a flag or env name.
 */

/**
 * `list`: repeatable. Each occurrence of the flag is one entry (the flag's entries replace the
 * environment variable's); the environment variable holds whitespace-separated entries.
 */
export type InputKind = 'path' | 'duration' | 'string' | 'bool' | 'int' | 'list';

/** The `<layers>` placeholder; resolved after `-layers` is known. */
export const PLACEHOLDER_LAYERS = '<layers>';

export interface DeprecatedAlias {
  /** old flag name, without dash */
  flag?: string;
  /** old env var */
  env?: string;
}

export interface InputDefinition {
  /** camelCase name in resolved inputs */
  key: string;
  kind: InputKind;
  /** flag name without dash; absent for env-only inputs */
  flag?: string;
  env?: string;
  /** default as text (Go duration syntax for durations; may contain `<layers>`) */
  default?: string;
  /**
   * Platform API from which this input is part of the contract. The flag is only defined
   * from this version (an error below it); the env var is always read, as upstream does.
   */
  since?: string;
  /** old names still accepted, reported as deprecated when used */
  deprecatedAliases?: readonly DeprecatedAlias[];
  /** allowed values (string kind) */
  choices?: readonly string[];
  description: string;
}

export const ENV = Object.freeze({
  platformApi: 'CNB_PLATFORM_API',
  deprecationMode: 'CNB_DEPRECATION_MODE',
  experimentalMode: 'CNB_EXPERIMENTAL_MODE',
  analyzedPath: 'CNB_ANALYZED_PATH',
  appDir: 'CNB_APP_DIR',
  buildConfigDir: 'CNB_BUILD_CONFIG_DIR',
  buildpacksDir: 'CNB_BUILDPACKS_DIR',
  execEnv: 'CNB_EXEC_ENV',
  extendBackend: 'CNB_EXTEND_BACKEND',
  extendBackendOpts: 'CNB_EXTEND_BACKEND_OPTS',
  extendCacheTtl: 'CNB_EXTEND_CACHE_TTL',
  extendDir: 'CNB_EXTEND_DIR',
  extendKind: 'CNB_EXTEND_KIND',
  extendLayerCompression: 'CNB_EXTEND_LAYER_COMPRESSION',
  extendNetwork: 'CNB_EXTEND_NETWORK',
  extendedBuildImage: 'CNB_EXTENDED_BUILD_IMAGE',
  extendedBuildLayout: 'CNB_EXTENDED_BUILD_LAYOUT',
  extendedDir: 'CNB_EXTENDED_DIR',
  extendedRunImage: 'CNB_EXTENDED_RUN_IMAGE',
  generatedDir: 'CNB_GENERATED_DIR',
  gid: 'CNB_GROUP_ID',
  groupPath: 'CNB_GROUP_PATH',
  kanikoCacheTtl: 'CNB_KANIKO_CACHE_TTL',
  layersDir: 'CNB_LAYERS_DIR',
  logLevel: 'CNB_LOG_LEVEL',
  noColor: 'CNB_NO_COLOR',
  planPath: 'CNB_PLAN_PATH',
  platformDir: 'CNB_PLATFORM_DIR',
  uid: 'CNB_USER_ID',
} as const);

export const DEFAULTS = Object.freeze({
  analyzedPath: `${PLACEHOLDER_LAYERS}/analyzed.toml`,
  appDir: '/workspace',
  buildConfigDir: '/cnb/build-config',
  buildpacksDir: '/cnb/buildpacks',
  execEnv: 'production',
  extendBackend: 'inplace',
  /** 2 weeks, the lifecycle's kaniko cache TTL */
  extendCacheTtl: '336h',
  /** the directory platforms mount today (the "kaniko dir") */
  extendDir: '/kaniko',
  extendKind: 'build',
  extendLayerCompression: 'gzip',
  extendNetwork: 'default',
  extendedDir: `${PLACEHOLDER_LAYERS}/extended`,
  generatedDir: `${PLACEHOLDER_LAYERS}/generated`,
  groupPath: `${PLACEHOLDER_LAYERS}/group.toml`,
  layersDir: '/layers',
  logFormat: 'text',
  logLevel: 'info',
  planPath: `${PLACEHOLDER_LAYERS}/plan.toml`,
  platformDir: '/platform',
} as const);

export const EXTEND_KINDS = ['build', 'run'] as const;
export type ExtendKind = (typeof EXTEND_KINDS)[number];

/**
 * The network a RUN gets (`-extend-network`): `default` is what the Go extender gives a RUN (the
 * network of the container it runs in; for a daemon, its default network), `none` only loopback,
 * `host` the network of the host the RUN runs on.
 */
export const EXTEND_NETWORKS = ['default', 'none', 'host'] as const;
export type ExtendNetwork = (typeof EXTEND_NETWORKS)[number];

/** Compression of the layers an in-place backend writes (`-extend-layer-compression`); gzip is what every runtime reads. */
export const EXTEND_LAYER_COMPRESSIONS = ['gzip', 'zstd'] as const;
export type ExtendLayerCompression = (typeof EXTEND_LAYER_COMPRESSIONS)[number];

/** The extender's inputs (`/cnb/lifecycle/extender`, `lifecycle extend`). */
export const EXTENDER_INPUTS: readonly InputDefinition[] = Object.freeze([
  { key: 'analyzedPath', kind: 'path', flag: 'analyzed', env: ENV.analyzedPath, default: DEFAULTS.analyzedPath, description: 'path to analyzed.toml' },
  { key: 'appDir', kind: 'path', flag: 'app', env: ENV.appDir, default: DEFAULTS.appDir, description: 'path to app directory' },
  { key: 'backend', kind: 'string', flag: 'backend', env: ENV.extendBackend, default: DEFAULTS.extendBackend, description: 'backend that applies the Dockerfiles (inplace, buildah, docker, buildkit, or auto: inplace as root in a container, else buildah, else docker)' },
  {
    key: 'backendOpts',
    kind: 'list',
    flag: 'backend-opt',
    env: ENV.extendBackendOpts,
    description:
      'a setting of the chosen backend as name=value (repeatable; the environment variable takes whitespace-separated entries, and the flag replaces them); each backend\'s settings are listed in docs/backends.md',
  },
  { key: 'buildConfigDir', kind: 'path', env: ENV.buildConfigDir, default: DEFAULTS.buildConfigDir, description: 'path to build config directory (build kind)' },
  { key: 'buildpacksDir', kind: 'path', flag: 'buildpacks', env: ENV.buildpacksDir, default: DEFAULTS.buildpacksDir, description: 'path to buildpacks directory' },
  { key: 'execEnv', kind: 'string', env: ENV.execEnv, default: DEFAULTS.execEnv, since: '0.15', description: 'target execution environment (build kind)' },
  {
    key: 'extendCacheTtl',
    kind: 'duration',
    flag: 'extend-cache-ttl',
    env: ENV.extendCacheTtl,
    default: DEFAULTS.extendCacheTtl,
    deprecatedAliases: [{ flag: 'kaniko-cache-ttl', env: ENV.kanikoCacheTtl }],
    description: 'time-to-live of cached extension layers',
  },
  { key: 'extendDir', kind: 'path', flag: 'extend-dir', env: ENV.extendDir, default: DEFAULTS.extendDir, description: 'path to the extend directory (layer cache and work area; formerly the kaniko directory)' },
  { key: 'extendKind', kind: 'string', flag: 'kind', env: ENV.extendKind, default: DEFAULTS.extendKind, since: '0.12', choices: EXTEND_KINDS, description: 'kind of image to extend' },
  {
    key: 'extendLayerCompression',
    kind: 'string',
    flag: 'extend-layer-compression',
    env: ENV.extendLayerCompression,
    default: DEFAULTS.extendLayerCompression,
    choices: EXTEND_LAYER_COMPRESSIONS,
    description:
      'compression of the layers the in-place backend writes (gzip: every registry and runtime reads it; zstd: faster and smaller, needs containerd 1.5+, Docker 23+ or CRI-O/podman with zstd support and an exporter that keeps the media type, docs/backends.md); part of the layer cache key',
  },
  {
    key: 'extendNetwork',
    kind: 'string',
    flag: 'extend-network',
    env: ENV.extendNetwork,
    default: DEFAULTS.extendNetwork,
    choices: EXTEND_NETWORKS,
    description:
      'network of RUN instructions, per backend in docs/backends.md (default: what the Go extender gives a RUN, the network of the extender\'s container or the daemon\'s default network; none: loopback only; host: the network of the host the RUN runs on)',
  },
  {
    key: 'extendedBuildImage',
    kind: 'string',
    flag: 'extended-build-image',
    env: ENV.extendedBuildImage,
    description:
      'registry reference to push the extended build image to (build kind with an image-producing backend; its digest reference is recorded as [build-image] reference in analyzed.toml)',
  },
  {
    key: 'extendedBuildLayout',
    kind: 'path',
    flag: 'extended-build-layout',
    env: ENV.extendedBuildLayout,
    description:
      'directory to write the extended build image to as an OCI layout (build kind with an image-producing backend; alternative to -extended-build-image)',
  },
  {
    key: 'extendedDir',
    kind: 'path',
    flag: 'extended',
    env: ENV.extendedDir,
    default: DEFAULTS.extendedDir,
    since: '0.12',
    description: 'path to output directory for image layers created from applying generated Dockerfiles',
  },
  {
    key: 'extendedRunImage',
    kind: 'string',
    flag: 'extended-run-image',
    env: ENV.extendedRunImage,
    description:
      'registry reference to push the extended run image to instead of writing <extended>/run (run kind with an image-producing backend; its digest reference is recorded as [run-image.extended] reference in analyzed.toml, a proposal today\'s exporter does not read: docs/spec-delta.md)',
  },
  { key: 'generatedDir', kind: 'path', flag: 'generated', env: ENV.generatedDir, default: DEFAULTS.generatedDir, description: 'path to output directory for files generated by image extensions' },
  { key: 'gid', kind: 'int', flag: 'gid', env: ENV.gid, default: '0', description: "GID of user's group in the stack's build and run images" },
  { key: 'groupPath', kind: 'path', flag: 'group', env: ENV.groupPath, default: DEFAULTS.groupPath, description: 'path to group.toml' },
  { key: 'layersDir', kind: 'path', flag: 'layers', env: ENV.layersDir, default: DEFAULTS.layersDir, description: 'path to layers directory' },
  { key: 'logFormat', kind: 'string', flag: 'log-format', default: DEFAULTS.logFormat, choices: ['text', 'json'], description: 'log output format (text or json)' },
  { key: 'logLevel', kind: 'string', flag: 'log-level', env: ENV.logLevel, default: DEFAULTS.logLevel, description: 'logging level' },
  { key: 'noColor', kind: 'bool', flag: 'no-color', env: ENV.noColor, default: 'false', description: 'disable color output' },
  { key: 'planPath', kind: 'path', flag: 'plan', env: ENV.planPath, default: DEFAULTS.planPath, description: 'path to plan.toml' },
  { key: 'platformDir', kind: 'path', flag: 'platform', env: ENV.platformDir, default: DEFAULTS.platformDir, description: 'path to platform directory' },
  { key: 'uid', kind: 'int', flag: 'uid', env: ENV.uid, default: '0', description: "UID of user in the stack's build and run images" },
] satisfies InputDefinition[]);
