import { ApiVersion } from './version.ts';

/**
 * A pair of API version lists, as in the lifecycle's `api/apis.go`: every supported version
 * (deprecated ones included) and the deprecated subset.
 */
export interface ApiList {
  readonly supported: readonly ApiVersion[];
  readonly deprecated: readonly ApiVersion[];
  isSupported(version: ApiVersion | string): boolean;
  isDeprecated(version: ApiVersion | string): boolean;
  /** The highest supported version. */
  latest(): ApiVersion;
  /** The lowest supported version. */
  oldest(): ApiVersion;
  /** `["0.7", "0.8", …]`, for help texts, docs, descriptors and test matrices. */
  supportedStrings(): string[];
  deprecatedStrings(): string[];
}

export class ApiListError extends Error {
  override name = 'ApiListError';
}

/**
 * Build an ApiList. Deprecated versions must be supported and, like upstream, may only be
 * `0.x` versions or whole major versions (`1` deprecates every `1.x`).
 */
export function createApiList(supported: readonly string[], deprecated: readonly string[] = []): ApiList {
  if (supported.length === 0) throw new ApiListError('an API list needs at least one supported version');
  const supportedVersions = supported.map((v) => ApiVersion.parse(v));
  const isSupported = (version: ApiVersion | string): boolean => {
    const target = ApiVersion.from(version);
    return supportedVersions.some((s) => s.isSupersetOf(target));
  };
  const deprecatedVersions = deprecated.map((d) => {
    const version = ApiVersion.parse(d);
    if (!isSupported(version)) throw new ApiListError(`invalid deprecated API '${d}': all deprecated APIs must also be supported`);
    if (version.major !== 0 && version.minor !== 0) {
      throw new ApiListError(`invalid deprecated API '${d}': deprecated APIs may only contain 0.x or a major version`);
    }
    return version;
  });
  const sorted = [...supportedVersions].sort((a, b) => a.compare(b));
  return Object.freeze({
    supported: Object.freeze(supportedVersions),
    deprecated: Object.freeze(deprecatedVersions),
    isSupported,
    isDeprecated: (version: ApiVersion | string) => {
      const target = ApiVersion.from(version);
      // A deprecated major (`1`) covers every `1.x`, as api/apis.go documents (its code only matches 1.0).
      return deprecatedVersions.some((d) => (d.major === 0 ? d.equals(target) : d.major === target.major));
    },
    latest: () => sorted[sorted.length - 1]!,
    oldest: () => sorted[0]!,
    supportedStrings: () => supportedVersions.map(String),
    deprecatedStrings: () => deprecatedVersions.map(String),
  });
}

/** Platform APIs the lifecycle accepts for its phases overall (lifecycle `api.Platform`). */
export const PLATFORM_APIS: ApiList = createApiList(['0.7', '0.8', '0.9', '0.10', '0.11', '0.12', '0.13', '0.14', '0.15']);

/**
 * Platform APIs that define the extend phase (image extensions arrived in 0.10). The extender
 * verifies `CNB_PLATFORM_API` against this list; it is also the e2e matrix.
 */
export const EXTEND_PLATFORM_APIS: ApiList = createApiList(['0.10', '0.11', '0.12', '0.13', '0.14', '0.15']);

/** Buildpack APIs the lifecycle accepts for buildpacks and image extensions (lifecycle `api.Buildpack`). */
export const BUILDPACK_APIS: ApiList = createApiList(['0.7', '0.8', '0.9', '0.10', '0.11', '0.12']);

/** Whether a Platform API defines the extend phase. */
export function supportsExtension(platformApi: ApiVersion | string): boolean {
  return EXTEND_PLATFORM_APIS.isSupported(platformApi);
}

/**
 * The Platform API versions where extend-phase behaviour changes. Gate on these (through
 * `platformFeatures`) instead of scattering version literals.
 */
export const PLATFORM_API_FEATURES = Object.freeze({
  /** image extensions and the extend phase exist */
  extension: '0.10',
  /** `-kind` and `-extended` are flags; run-image extension exists */
  extendKindFlag: '0.12',
  /** `<generated>/<id>/<kind>.Dockerfile`, `extend-config.toml` per extension, `context[.<kind>]` build contexts */
  perExtensionGeneratedLayout: '0.13',
  /** `CNB_EXEC_ENV` is part of the contract */
  execEnv: '0.15',
} as const);

export type PlatformFeature = keyof typeof PLATFORM_API_FEATURES;

/** Which features a Platform API has, e.g. `platformFeatures('0.12').perExtensionGeneratedLayout === false`. */
export function platformFeatures(platformApi: ApiVersion | string): Record<PlatformFeature, boolean> {
  const api = ApiVersion.from(platformApi);
  const out = {} as Record<PlatformFeature, boolean>;
  for (const [feature, since] of Object.entries(PLATFORM_API_FEATURES) as [PlatformFeature, string][]) {
    out[feature] = api.atLeast(since);
  }
  return out;
}
