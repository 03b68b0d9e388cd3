import { EXTEND_PLATFORM_APIS, type ApiList } from '../api/apis.ts';
import { ENV_DEPRECATION_MODE, ENV_PLATFORM_API, parseDeprecationMode, verifyPlatformApi, type Notice } from '../api/verify.ts';
import { ApiVersion } from '../api/version.ts';
import { fail } from '../errors.ts';
import { parseLogLevel, type LogFormat, type LogLevel } from '../log.ts';
import { EXTENDER_INPUTS, type ExtendKind, type ExtendLayerCompression, type ExtendNetwork } from './definitions.ts';
import { formatGoUsage, parseGoFlags, type FlagSpec } from './flags.ts';
import { checkChoices, deprecationMessages, flagSpecsFor, resolveInputs, type DeprecatedUse, type InputOrigin } from './resolve.ts';

/** The extender's resolved inputs. Paths are absolute; `<layers>` is resolved. */
export interface ExtenderInputs {
  analyzedPath: string;
  appDir: string;
  /** backend id (`inplace` by default); the backend catalog validates it */
  backend: string;
  /**
   * `-backend-opt` entries (`name=value`, in order), else those of `CNB_EXTEND_BACKEND_OPTS`;
   * the backend catalog checks them against the chosen backend's settings.
   */
  backendOpts: string[];
  buildConfigDir: string;
  buildpacksDir: string;
  execEnv: string;
  /** layer cache time-to-live in milliseconds (`-extend-cache-ttl`, formerly `-kaniko-cache-ttl`) */
  extendCacheTtl: number;
  /** the extend directory (`/kaniko` by default) */
  extendDir: string;
  extendKind: ExtendKind;
  /** Compression of the layers an in-place backend writes. */
  extendLayerCompression: ExtendLayerCompression;
  /** the network RUN instructions get (`default`, `none`, `host`) */
  extendNetwork: ExtendNetwork;
  /** build kind, image-producing backend: registry reference to push the extended build image to */
  extendedBuildImage?: string;
  /** build kind, image-producing backend: directory to write the extended build image to (OCI layout) */
  extendedBuildLayout?: string;
  /** Run kind, image-producing backends: push the extended run image here and record it in analyzed.toml instead of writing `<extended>/run`. */
  extendedRunImage?: string;
  extendedDir: string;
  generatedDir: string;
  gid: number;
  groupPath: string;
  layersDir: string;
  logFormat: LogFormat;
  logLevel: LogLevel;
  noColor: boolean;
  planPath: string;
  platformDir: string;
  uid: number;
}

export const VERSION_FLAG: FlagSpec = Object.freeze({ name: 'version', kind: 'bool', usage: 'show version' });

/** Every flag the extender accepts at a Platform API (`-version` included). */
export function extenderFlagSpecs(platformApi: ApiVersion | string): FlagSpec[] {
  return [...flagSpecsFor(EXTENDER_INPUTS, platformApi), VERSION_FLAG];
}

/** Go-style usage text for the extender at a Platform API. */
export function extenderUsage(platformApi: ApiVersion | string, programName = 'lifecycle'): string {
  return formatGoUsage(programName, extenderFlagSpecs(platformApi));
}

export type ExtenderInvocation =
  | { action: 'help'; usage: string }
  | { action: 'version' }
  | {
      action: 'run';
      platformApi: ApiVersion;
      inputs: ExtenderInputs;
      /** where each value came from */
      origins: Record<keyof ExtenderInputs, InputOrigin>;
      /** deprecated names that were set (`-kaniko-cache-ttl`, `CNB_KANIKO_CACHE_TTL`) */
      deprecations: DeprecatedUse[];
      /** messages for the CLI to log once, at warn level: deprecated aliases, ignored env values, API notices */
      warnings: string[];
    };

export interface ParseExtenderArgsOptions {
  platformApi: ApiVersion | string;
  env?: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  /** name in the usage line (`Usage of lifecycle:`, as upstream) */
  programName?: string;
}

/**
 * Parse the extender's argv (without the program name, or the `extend` subcommand) in the
 * order the lifecycle checks things:
 * flags (exit 2, or help) → `-version` → `-log-level` (exit 1) → positional arguments
 * (exit 3) → `-kind` / `-log-format` / `-extend-network` values (exit 3).
 */
export function parseExtenderArgs(argv: readonly string[], options: ParseExtenderArgsOptions): ExtenderInvocation {
  const platformApi = ApiVersion.from(options.platformApi);
  const usage = extenderUsage(platformApi, options.programName);
  const parsed = parseGoFlags(argv, extenderFlagSpecs(platformApi), usage);
  if (parsed.help) return { action: 'help', usage };
  if (parsed.values.get('version') === 'true') return { action: 'version' };

  const resolved = resolveInputs(EXTENDER_INPUTS, {
    flags: new Map<string, string | readonly string[]>([...parsed.values, ...parsed.lists]),
    platformApi,
    ...(options.env ? { env: options.env } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  resolved.values['logLevel'] = parseLogLevel(String(resolved.values['logLevel']));

  if (parsed.positional.length > 0) {
    const details = parsed.positional
      .filter((arg) => arg.startsWith('-'))
      .map((arg) => `unconsumed flag-like positional arg: ${arg}; it is not interpreted as a flag (flags must come before the first positional argument)`);
    throw fail('INVALID_INPUT', 'parse arguments', new Error('received unexpected arguments'), details);
  }
  checkChoices(EXTENDER_INPUTS, resolved);

  return {
    action: 'run',
    platformApi,
    inputs: resolved.values as unknown as ExtenderInputs,
    origins: resolved.origins as Record<keyof ExtenderInputs, InputOrigin>,
    deprecations: resolved.deprecations,
    warnings: [...deprecationMessages(resolved.deprecations), ...resolved.warnings],
  };
}

export interface ParseExtenderCommandLineOptions {
  env: Readonly<Record<string, string | undefined>>;
  cwd?: string;
  programName?: string;
  /** Platform APIs to accept (default: the extend phase's, 0.10–0.15) */
  apis?: ApiList;
}

/**
 * Everything the CLI needs before running: verify `CNB_PLATFORM_API` (exit 11, honouring
 * `CNB_DEPRECATION_MODE`), then parse argv with `parseExtenderArgs`. Platform API notices are
 * added to `warnings`.
 */
export function parseExtenderCommandLine(argv: readonly string[], options: ParseExtenderCommandLineOptions): ExtenderInvocation {
  const verified = verifyPlatformApi(options.env[ENV_PLATFORM_API], {
    apis: options.apis ?? EXTEND_PLATFORM_APIS,
    deprecationMode: parseDeprecationMode(options.env[ENV_DEPRECATION_MODE]),
  });
  const invocation = parseExtenderArgs(argv, {
    platformApi: verified.api,
    env: options.env,
    ...(options.cwd ? { cwd: options.cwd } : {}),
    ...(options.programName ? { programName: options.programName } : {}),
  });
  if (invocation.action === 'run') invocation.warnings.unshift(...verified.notices.map((n: Notice) => n.message));
  return invocation;
}
