/** A point in a Dockerfile: 1-based line, 1-based column counted in UTF-16 code units. */
export interface Position {
  line: number;
  column: number;
}

/** A span of source text; `end` is exclusive. */
export interface SourceRange {
  start: Position;
  end: Position;
}

/** What stage of reading a Dockerfile an error comes from. */
export type DockerfileErrorKind =
  /** The text could not be split into instructions (directives, heredocs, JSON with non-strings, …). */
  | 'syntax'
  /** An instruction is unknown or its flags/arguments are invalid (BuildKit's `instructions` package). */
  | 'instruction'
  /** Variable expansion or evaluation with build args failed (BuildKit's dispatch). */
  | 'evaluation'
  /** A CNB extension rule is broken (the lifecycle's `buildpack/dockerfile.go`). */
  | 'extension-rule';

export interface DockerfileErrorOptions {
  kind: DockerfileErrorKind;
  file: string;
  range: SourceRange;
  cause?: unknown;
}

/**
 * The one error type the library throws for bad input. `reason` is the upstream
 * (BuildKit / lifecycle) wording; `message` prefixes it with `file:line:column`.
 */
export class DockerfileError extends Error {
  override name = 'DockerfileError';
  readonly kind: DockerfileErrorKind;
  readonly reason: string;
  readonly file: string;
  readonly range: SourceRange;

  constructor(reason: string, options: DockerfileErrorOptions) {
    super(`${options.file}:${options.range.start.line}:${options.range.start.column}: ${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = options.kind;
    this.reason = reason;
    this.file = options.file;
    this.range = options.range;
  }

  get line(): number {
    return this.range.start.line;
  }

  get column(): number {
    return this.range.start.column;
  }
}

/**
 * An error of the shell-word lexer used on its own (no file position known).
 * Messages are BuildKit's (`failed to process "${x": syntax error: missing '}'`).
 */
export class ExpansionError extends Error {
  override name = 'ExpansionError';
}
