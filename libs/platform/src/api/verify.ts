import { fail } from '../errors.ts';
import { BUILDPACK_APIS, EXTEND_PLATFORM_APIS, type ApiList } from './apis.ts';
import { ApiVersion } from './version.ts';

export const ENV_PLATFORM_API = 'CNB_PLATFORM_API';
export const ENV_DEPRECATION_MODE = 'CNB_DEPRECATION_MODE';

export const DEPRECATION_MODES = ['quiet', 'warn', 'error'] as const;
export type DeprecationMode = (typeof DEPRECATION_MODES)[number];
/** The lifecycle's default (`cmd/apis.go`). */
export const DEFAULT_DEPRECATION_MODE: DeprecationMode = 'warn';

/**
 * `CNB_DEPRECATION_MODE` as the lifecycle reads it (`cmd/apis.go`): exactly `quiet`, `warn` or
 * `error`, case-sensitive and untrimmed; `undefined` when unset, empty or anything else (`Quiet`
 * included). Every deprecation notice, of an API or of a scheduled surface, reads the mode here.
 */
export function deprecationModeSetting(value: string | undefined): DeprecationMode | undefined {
  return (DEPRECATION_MODES as readonly string[]).includes(value ?? '') ? (value as DeprecationMode) : undefined;
}

/** `CNB_DEPRECATION_MODE` → mode; unset or unknown values behave as `warn`, like upstream. */
export function parseDeprecationMode(value: string | undefined): DeprecationMode {
  return deprecationModeSetting(value) ?? DEFAULT_DEPRECATION_MODE;
}

/** A message the caller should log; the library never prints. */
export interface Notice {
  level: 'warn' | 'error';
  message: string;
}

export interface VerifiedApi {
  api: ApiVersion;
  notices: Notice[];
}

export interface VerifyPlatformApiOptions {
  /** defaults to EXTEND_PLATFORM_APIS; pass PLATFORM_APIS for the lifecycle's full range */
  apis?: ApiList;
  deprecationMode?: DeprecationMode;
}

/**
 * Check `CNB_PLATFORM_API` the way the lifecycle does before anything else. Throws a
 * `PLATFORM_API_UNSUPPORTED` error (exit 11) with the lifecycle's message when it is missing,
 * unparsable, unsupported, or deprecated while `CNB_DEPRECATION_MODE=error`.
 */
export function verifyPlatformApi(requested: string | undefined, options: VerifyPlatformApiOptions = {}): VerifiedApi {
  const apis = options.apis ?? EXTEND_PLATFORM_APIS;
  const mode = options.deprecationMode ?? DEFAULT_DEPRECATION_MODE;
  const code = 'PLATFORM_API_UNSUPPORTED';
  if (requested === undefined || requested.trim() === '') {
    throw fail(code, `get platform API version; please set '${ENV_PLATFORM_API}' to specify the desired platform API version`);
  }
  const api = ApiVersion.tryParse(requested);
  if (!api) throw fail(code, `parse platform API '${requested}'`);
  const incompatible = (details?: string[]) =>
    fail(code, 'set platform API', new Error(`platform API version '${requested}' is incompatible with the lifecycle`), details);
  if (!apis.isSupported(api)) throw incompatible();
  const notices: Notice[] = [];
  if (apis.isDeprecated(api)) {
    const message = `Platform requested deprecated API '${requested}'`;
    if (mode === 'error') {
      throw incompatible([message, `Deprecated APIs are disabled by ${ENV_DEPRECATION_MODE}=error`]);
    }
    if (mode === 'warn') notices.push({ level: 'warn', message });
  }
  return { api, notices };
}

/** `Buildpack` or `Extension`, spelled as the lifecycle spells module kinds in messages. */
export type ModuleKind = 'Buildpack' | 'Extension';

export interface VerifyBuildpackApiOptions {
  apis?: ApiList;
  deprecationMode?: DeprecationMode;
}

/**
 * Check the Buildpack API a buildpack or extension declares (`api` in group.toml). Throws a
 * `EXTENSION_API_UNSUPPORTED` error (exit 12) with the lifecycle's message when it is unparsable or
 * unsupported (or deprecated under `CNB_DEPRECATION_MODE=error`).
 *
 * `name` is `<id>@<version>`. Upstream prints `'<nil>'` instead of the text it failed to
 * parse; we print the text.
 */
export function verifyBuildpackApi(kind: ModuleKind, name: string, requested: string | undefined, options: VerifyBuildpackApiOptions = {}): VerifiedApi {
  const apis = options.apis ?? BUILDPACK_APIS;
  const mode = options.deprecationMode ?? DEFAULT_DEPRECATION_MODE;
  const code = 'EXTENSION_API_UNSUPPORTED';
  const text = requested ?? '';
  const api = ApiVersion.tryParse(text);
  if (!api) throw fail(code, `parse buildpack API '${text}' for ${kind.toLowerCase()} '${name}'`);
  const incompatible = (details?: string[]) =>
    fail(code, `set API for ${kind} '${name}'`, new Error(`buildpack API version '${text}' is incompatible with the lifecycle`), details);
  if (!apis.isSupported(api)) throw incompatible();
  const notices: Notice[] = [];
  if (apis.isDeprecated(api)) {
    const message = `${kind} '${name}' requests deprecated API '${text}'`;
    if (mode === 'error') throw incompatible([message, `Deprecated APIs are disabled by ${ENV_DEPRECATION_MODE}=error`]);
    if (mode === 'warn') notices.push({ level: 'warn', message });
  }
  return { api, notices };
}
