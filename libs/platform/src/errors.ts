import { EXIT_CODES } from './exit-codes.ts';

/**
 * Errors that end a lifecycle command. `code` is the exit code; the message reads like the
 * lifecycle's `ErrorFail`: `failed to <action>: <cause>`.
 */
export interface LifecycleErrorOptions {
  cause?: unknown;
  /** the action words (`['extend', 'build image']` or `'extend build image'`) */
  action?: string | readonly string[];
  /** extra lines the CLI may print before the error (already phrased for humans) */
  details?: readonly string[];
}

export class LifecycleError extends Error {
  override name = 'LifecycleError';
  readonly code: number;
  readonly action: string | undefined;
  readonly details: readonly string[];

  constructor(code: number, message: string, options: LifecycleErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.action = options.action === undefined ? undefined : joinAction(options.action);
    this.details = options.details ?? [];
  }
}

/**
 * A bad flag (exit 2). Go's `flag` package prints the message and then the usage text, with
 * no `ERROR:` prefix; `renderError` does the same.
 */
export class FlagError extends LifecycleError {
  override name = 'FlagError';
  readonly usage: string;

  constructor(message: string, usage: string) {
    super(EXIT_CODES.invalidFlags, message);
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

/** A failure with an explicit exit code (Go `FailErrCode` / `FailCode`). */
export function fail(code: number, action: string | readonly string[], cause?: unknown, details?: readonly string[]): LifecycleError {
  return new LifecycleError(code, formatFailure(action, cause), { cause, action, details });
}

/**
 * A failure that keeps the exit code of a LifecycleError cause, else 1 (Go `FailErr`).
 */
export function failErr(cause: unknown, action: string | readonly string[]): LifecycleError {
  return fail(exitCodeOf(cause), action, cause);
}

/**
 * Like the lifecycle's `unwrapErrorFailWithCode`: a LifecycleError passes through unchanged,
 * anything else is wrapped with the fallback code and action.
 */
export function asLifecycleError(err: unknown, fallbackCode: number, action: string | readonly string[]): LifecycleError {
  return err instanceof LifecycleError ? err : fail(fallbackCode, action, err);
}

/** The exit code for an error: its `code` when it is a LifecycleError, else 1. */
export function exitCodeOf(err: unknown): number {
  if (err === undefined || err === null) return EXIT_CODES.success;
  if (err instanceof LifecycleError) return err.code;
  return EXIT_CODES.failed;
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
