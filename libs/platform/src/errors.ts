/**
 * The project's one error class. `code` is a stable string naming what failed (tests assert
 * it; the CLIs map it to the process's exit code through their one table); the message reads
 * as a chain of actions, like the lifecycle's `ErrorFail`
 * (`failed to extend run image: applying Dockerfile for curl: …`); `cause` keeps the
 * underlying error.
 */
export type ErrorCode =
  /** A failure with no more specific code (e.g. an unknown `-log-level`). */
  | 'FAILED'
  /** A flag is unknown, malformed or has an invalid value (the usage is printed). */
  | 'INVALID_FLAG'
  /** Arguments or inputs that cannot be used (positional arguments, `-kind` other than build|run, an unknown phase, conflicting outputs, …). */
  | 'INVALID_INPUT'
  /** A deprecated entry point, flag or variable that this version or `CNB_DEPRECATION_MODE=error` refuses. */
  | 'DEPRECATED_SURFACE'
  /** CNB_PLATFORM_API missing, unparsable or outside what the extender supports. */
  | 'PLATFORM_API_UNSUPPORTED'
  /** An extension's (or buildpack's) `api` in group.toml is outside the supported Buildpack API range. */
  | 'EXTENSION_API_UNSUPPORTED'
  /** The chosen backend cannot be used: unknown id, not in this build, not a backend, or a `-backend-opt` that does not fit it. */
  | 'BACKEND_SELECTION_FAILED'
  /** The chosen backend needs a container, root or capabilities this process does not have. */
  | 'PRIVILEGES_MISSING'
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
  | 'ABORTED'
  /** After the Dockerfiles were applied: publishing the extended image, recording it in analyzed.toml or handing `<layers>` to the build phase failed. */
  | 'FINISH_FAILED'
  /** Build kind in place: the build phase could not be started (root uid, no way to switch user, builder missing). */
  | 'BUILD_HANDOFF_FAILED'
  /** A phase other than extend could not be handed to the upstream lifecycle (missing, not executable, not started). */
  | 'UPSTREAM_FAILED';

export interface ExtenderErrorOptions {
  cause?: unknown;
  /** The action words (`['extend', 'build image']` or `'extend build image'`) of a `failed to <action>: …` message. */
  action?: string | readonly string[];
  /** Extra lines the CLI may print before the error (already phrased for humans). */
  details?: readonly string[];
  /** The file or directory the error is about, when there is one. */
  path?: string;
  /** The Dockerfile instruction that failed, when a backend said so. */
  instruction?: string;
  /** The extension the error is about. */
  extensionId?: string;
}

export class ExtenderError extends Error {
  override name = 'ExtenderError';
  readonly code: ErrorCode;
  readonly action: string | undefined;
  readonly details: readonly string[];
  readonly path: string | undefined;
  readonly instruction: string | undefined;
  readonly extensionId: string | undefined;

  constructor(code: ErrorCode, message: string, options: ExtenderErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.action = options.action === undefined ? undefined : joinAction(options.action);
    this.details = options.details ?? [];
    this.path = options.path;
    this.instruction = options.instruction;
    this.extensionId = options.extensionId;
  }
}

/**
 * A bad flag (`INVALID_FLAG`). Go's `flag` package prints the message and then the usage
 * text, with no `ERROR:` prefix; `renderError` does the same.
 */
export class FlagError extends ExtenderError {
  override name = 'FlagError';
  readonly usage: string;

  constructor(message: string, usage: string) {
    super('INVALID_FLAG', message);
    this.usage = usage;
  }
}

function joinAction(action: string | readonly string[]): string {
  return typeof action === 'string' ? action : action.join(' ');
}

/** The message of any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === 'string') return err;
  return String(err);
}

/** `failed to <action>` or `failed to <action>: <cause>`, the lifecycle's wording. */
export function formatFailure(action: string | readonly string[], cause?: unknown): string {
  const message = `failed to ${joinAction(action)}`;
  return cause === undefined || cause === null ? message : `${message}: ${messageOf(cause)}`;
}

/** `failed to <action>[: <cause>]` with a code (Go `FailErrCode`). */
export function fail(code: ErrorCode, action: string | readonly string[], cause?: unknown, details?: readonly string[]): ExtenderError {
  return new ExtenderError(code, formatFailure(action, cause), { cause, action, ...(details ? { details } : {}) });
}

/**
 * Prefix an error's message with an action (gerund form: `applying Dockerfile for curl`).
 * An ExtenderError keeps its code and details; anything else gets the `fallback` code.
 */
export function wrap(err: unknown, action: string, fallback: ErrorCode, options: ExtenderErrorOptions = {}): ExtenderError {
  if (err instanceof ExtenderError) {
    return new ExtenderError(err.code, `${action}: ${err.message}`, {
      cause: err,
      details: err.details,
      path: err.path ?? options.path,
      instruction: err.instruction ?? options.instruction,
      extensionId: err.extensionId ?? options.extensionId,
    });
  }
  return new ExtenderError(fallback, `${action}: ${messageOf(err)}`, { ...options, cause: err });
}

export interface RenderErrorOptions {
  /** wrap the `ERROR: ` prefix in red/bold ANSI codes like the lifecycle does */
  color?: boolean;
}

/**
 * The text the CLI writes for a fatal error, ending in a newline:
 * `ERROR: failed to <action>: <cause>` — or, for a FlagError, the flag message then usage.
 */
export function renderError(err: unknown, options: RenderErrorOptions = {}): string {
  if (err instanceof FlagError) return `${err.message}\n${err.usage}${err.usage.endsWith('\n') ? '' : '\n'}`;
  const prefix = options.color ? '\x1b[31;1mERROR: \x1b[0m' : 'ERROR: ';
  const message = messageOf(err);
  return `${prefix}${message}${message.endsWith('\n') ? '' : '\n'}`;
}
