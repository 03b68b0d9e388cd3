/**
 * API versions as the lifecycle parses them (`api/version.go`): `<major>.<minor>` or
 * `<major>` (meaning `<major>.0`), with an optional leading `v`. Versions are plain values:
 * parse once, then compare with `atLeast` / `lessThan`.
 */

const VERSION_PATTERN = /^v?(\d+)\.?(\d*)$/;

export class ApiVersionError extends Error {
  override name = 'ApiVersionError';
}

export class ApiVersion {
  readonly major: number;
  readonly minor: number;

  private constructor(major: number, minor: number) {
    this.major = major;
    this.minor = minor;
  }

  /** Parse `0.13`, `v0.13`, `1` (= `1.0`); throws ApiVersionError naming the text. */
  static parse(text: string): ApiVersion {
    const match = VERSION_PATTERN.exec(text);
    if (!match) throw new ApiVersionError(`could not parse '${text}' as version`);
    const major = Number(match[1]);
    const minor = match[2] === '' ? 0 : Number(match[2]);
    if (!Number.isSafeInteger(major) || !Number.isSafeInteger(minor)) {
      throw new ApiVersionError(`could not parse '${text}' as version: number out of range`);
    }
    return new ApiVersion(major, minor);
  }

  /** Like `parse`, but returns undefined for text that is not a version. */
  static tryParse(text: string): ApiVersion | undefined {
    try {
      return ApiVersion.parse(text);
    } catch {
      return undefined;
    }
  }

  static from(value: ApiVersion | string): ApiVersion {
    return typeof value === 'string' ? ApiVersion.parse(value) : value;
  }

  /** -1, 0 or 1. */
  compare(other: ApiVersion | string): -1 | 0 | 1 {
    const o = ApiVersion.from(other);
    if (this.major !== o.major) return this.major < o.major ? -1 : 1;
    if (this.minor !== o.minor) return this.minor < o.minor ? -1 : 1;
    return 0;
  }

  equals(other: ApiVersion | string): boolean {
    return this.compare(other) === 0;
  }

  atLeast(other: ApiVersion | string): boolean {
    return this.compare(other) >= 0;
  }

  lessThan(other: ApiVersion | string): boolean {
    return this.compare(other) < 0;
  }

  /**
   * Whether a module or platform asking for `other` is served by this version:
   * below 1.0 only the same version is, from 1.0 on any lower minor of the same major.
   */
  isSupersetOf(other: ApiVersion | string): boolean {
    const o = ApiVersion.from(other);
    if (this.major === 0) return this.equals(o);
    return this.major === o.major && this.minor >= o.minor;
  }

  toString(): string {
    return `${this.major}.${this.minor}`;
  }

  toJSON(): string {
    return this.toString();
  }
}

/** Sort ascending (returns a new array). */
export function sortVersions(versions: readonly ApiVersion[]): ApiVersion[] {
  return [...versions].sort((a, b) => a.compare(b));
}
