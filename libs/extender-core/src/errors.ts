/**
 * One error class for the core. `code` is stable (tests, JSON reports, the exit
 * table); the message reads as a chain of actions
 * (`failed to extend run image: applying Dockerfile for curl: …`); `cause` keeps
 * the underlying error.
 */
import { EXIT_CODES } from '@cnb-extender/platform';

export type ExtenderErrorCode =
  /** CNB_PLATFORM_API missing, unparsable or outside what the extender supports. */
  | 'PLATFORM_API_UNSUPPORTED'
  /** An extension's `api` in group.toml is outside the supported Buildpack API range. */
  | 'EXTENSION_API_UNSUPPORTED'
  /** Inputs that cannot be used (bad kind, bad cache TTL, …). */
  | 'INVALID_INPUT'
  /** analyzed.toml missing, unparsable or without the reference to extend. */
  | 'ANALYZED_INVALID'
  /** group.toml unreadable or malformed. */
  | 'GROUP_INVALID'
  /** extend-config.toml malformed or using a reserved arg name. */
  | 'EXTEND_CONFIG_INVALID'
  /** The generated directory holding the Dockerfiles does not exist. */
  | 'DOCKERFILE_DIR_MISSING'
  /** A Dockerfile could not be read or breaks the extension rules. */
  | 'DOCKERFILE_INVALID'
  /** Both `context` and `context.<kind>` exist for one extension. */
  | 'CONTEXT_CONFLICT'
  /** A build context directory cannot be read. */
  | 'CONTEXT_UNREADABLE'
  /** The backend cannot do what is asked (kind not supported, …). */
  | 'BACKEND_UNSUPPORTED'
  /** The base image could not be found or read. */
  | 'BASE_IMAGE'
  /** The backend failed to apply a Dockerfile. */
  | 'APPLY_FAILED'
  /** Run kind: the final user is root. */
  | 'ROOT_USER'
  /** Writing `<extended>/run` failed. */
  | 'OUTPUT_FAILED'
  /** The backend's cleanup failed. */
  | 'CLEANUP_FAILED'
  /** The run was cancelled through its AbortSignal. */
  | 'ABORTED';

export interface ExtenderErrorOptions {
  cause?: unknown;
  /** The file or directory the error is about, when there is one. */
  path?: string;
  /** The Dockerfile instruction that failed, when a backend said so. */
  instruction?: string;
  /** The extension the error is about. */
  extensionId?: string;
}

export class ExtenderError extends Error {
  override name = 'ExtenderError';
  readonly code: ExtenderErrorCode;
  readonly path: string | undefined;
  readonly instruction: string | undefined;
  readonly extensionId: string | undefined;

  constructor(code: ExtenderErrorCode, message: string, options: ExtenderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options.path;
    this.instruction = options.instruction;
    this.extensionId = options.extensionId;
  }

  /** The exit code the lifecycle uses for this error. */
  get exitCode(): number {
    return exitCodeFor(this.code);
  }
}

/**
 * The one table from error code to exit code, matching the Go lifecycle:
 * errors while initialising the extender (reading analyzed.toml, group.toml) are
 * generic (1); API checks are 11/12; everything during extension is 102.
 */
export const EXIT_CODE_BY_ERROR: Readonly<Record<ExtenderErrorCode, number>> = Object.freeze({
  PLATFORM_API_UNSUPPORTED: EXIT_CODES.incompatiblePlatformApi,
  EXTENSION_API_UNSUPPORTED: EXIT_CODES.incompatibleBuildpackApi,
  INVALID_INPUT: EXIT_CODES.invalidArgs,
  ANALYZED_INVALID: EXIT_CODES.failed,
  GROUP_INVALID: EXIT_CODES.failed,
  EXTEND_CONFIG_INVALID: EXIT_CODES.extendError,
  DOCKERFILE_DIR_MISSING: EXIT_CODES.extendError,
  DOCKERFILE_INVALID: EXIT_CODES.extendError,
  CONTEXT_CONFLICT: EXIT_CODES.extendError,
  CONTEXT_UNREADABLE: EXIT_CODES.extendError,
  BACKEND_UNSUPPORTED: EXIT_CODES.extendError,
  BASE_IMAGE: EXIT_CODES.extendError,
  APPLY_FAILED: EXIT_CODES.extendError,
  ROOT_USER: EXIT_CODES.extendError,
  OUTPUT_FAILED: EXIT_CODES.extendError,
  CLEANUP_FAILED: EXIT_CODES.extendError,
  ABORTED: EXIT_CODES.extendError,
});

export function exitCodeFor(code: ExtenderErrorCode): number {
  return EXIT_CODE_BY_ERROR[code];
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Prefix an error's message with an action (gerund form: `applying Dockerfile for curl`).
 * An ExtenderError keeps its code and details; anything else becomes `fallback`.
 */
export function wrap(err: unknown, action: string, fallback: ExtenderErrorCode, options: ExtenderErrorOptions = {}): ExtenderError {
  if (err instanceof ExtenderError) {
    return new ExtenderError(err.code, `${action}: ${err.message}`, {
      cause: err,
      path: err.path ?? options.path,
      instruction: err.instruction ?? options.instruction,
      extensionId: err.extensionId ?? options.extensionId,
    });
  }
  return new ExtenderError(fallback, `${action}: ${messageOf(err)}`, { ...options, cause: err });
}
