/**
 * The CNB rules for image extension Dockerfiles, as the Go lifecycle applies
 * them (`buildpack/dockerfile.go`, `internal/extend/config.go`): messages are
 * the lifecycle's, warnings are returned as data.
 */
import { DockerfileError, type SourceRange } from './errors.ts';
import { goQuote, goUpper } from './go.ts';
import { parseInstructions } from './instructions/parse.ts';
import type { Instructions } from './instructions/types.ts';
import { parse, type ParseResult } from './parser.ts';

export type ExtensionKind = 'build' | 'run';

/** Instructions an extension Dockerfile may use without a warning. */
export const RECOMMENDED_INSTRUCTIONS = ['FROM', 'ADD', 'ARG', 'COPY', 'ENV', 'LABEL', 'RUN', 'SHELL', 'USER', 'WORKDIR'] as const;

/** Build args the lifecycle provides itself; extend-config.toml may not set them. */
export const RESERVED_BUILD_ARGS = ['build_id', 'user_id', 'group_id'] as const;

/** The build arg naming the image being extended (`ARG base_image` / `FROM ${base_image}`). */
export const BASE_IMAGE_ARG = 'base_image';
const BASE_IMAGE_REF = '${base_image}';

const DOCKERFILE_NAME: Record<ExtensionKind, string> = { build: 'build.Dockerfile', run: 'run.Dockerfile' };

/** A "SHOULD" of the spec that a Dockerfile does not follow. */
export interface ExtensionWarning {
  code: 'command-not-recommended';
  /** The lifecycle's wording: `build.Dockerfile command CMD on line 4 is not recommended`. */
  message: string;
  /** Upper-cased keyword. */
  instruction: string;
  line: number;
  range: SourceRange;
}

export interface ExtensionDockerfileInfo {
  kind: ExtensionKind;
  warnings: ExtensionWarning[];
  /**
   * run.Dockerfile: the image the Dockerfile switches the run image to (its FROM,
   * when that is not `${base_image}`); empty when it extends the current image.
   */
  withBase: string;
  /** True when the Dockerfile has instructions after FROM (it modifies the image). */
  extend: boolean;
}

/** An extension rule was broken; `warnings` holds the warnings found before it. */
export class ExtensionRuleError extends DockerfileError {
  override name = 'ExtensionRuleError';
  readonly warnings: ExtensionWarning[];

  constructor(reason: string, file: string, range: SourceRange, warnings: ExtensionWarning[]) {
    super(reason, { kind: 'extension-rule', file, range });
    this.warnings = warnings;
  }
}

/** `extend-config.toml` sets a build arg the lifecycle reserves. */
export class ReservedBuildArgError extends Error {
  override name = 'ReservedBuildArgError';
  readonly argName: string;

  constructor(argName: string) {
    super(`invalid content: arg with name ${goQuote(argName)} is not allowed`);
    this.argName = argName;
  }
}

export interface ExtensionCheckOptions {
  /** Name for messages (default the parse result's, or `build.Dockerfile` / `run.Dockerfile`). */
  file?: string;
}

type Input = string | Uint8Array | ParseResult;

function load(input: Input, kind: ExtensionKind, options: ExtensionCheckOptions): { file: string; instructions: Instructions } {
  const parsed = typeof input === 'string' || input instanceof Uint8Array ? parse(input, { file: options.file ?? DOCKERFILE_NAME[kind] }) : input;
  const file = options.file ?? parsed.file;
  return { file, instructions: parseInstructions(parsed, { file }) };
}

function warningsFor(kind: ExtensionKind, instructions: Instructions): ExtensionWarning[] {
  const warnings: ExtensionWarning[] = [];
  for (const stage of instructions.stages) {
    for (const command of stage.commands) {
      const instruction = goUpper(command.name);
      if ((RECOMMENDED_INSTRUCTIONS as readonly string[]).includes(instruction)) continue;
      const line = command.location.start.line;
      warnings.push({
        code: 'command-not-recommended',
        message: `${DOCKERFILE_NAME[kind]} command ${instruction} on line ${line} is not recommended`,
        instruction,
        line,
        range: command.location,
      });
    }
  }
  return warnings;
}

const START: SourceRange = { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } };

/**
 * `ValidateBuildDockerfile`: one stage, starting with exactly the preamble
 * `ARG base_image` and `FROM ${base_image}`. Throws DockerfileError (parse
 * errors) or ExtensionRuleError.
 */
export function validateBuildDockerfile(input: Input, options: ExtensionCheckOptions = {}): ExtensionDockerfileInfo {
  const { file, instructions } = load(input, 'build', options);
  const { stages, metaArgs } = instructions;
  const name = DOCKERFILE_NAME.build;
  if (stages.length > 1) throw new ExtensionRuleError(`${name} is not permitted to use multistage build`, file, stages[1]!.location, []);
  const warnings = warningsFor('build', instructions);
  const firstArg = metaArgs[0]?.args[0];
  if (metaArgs.length !== 1 || firstArg?.key !== BASE_IMAGE_ARG) {
    const at = metaArgs[0]?.location ?? stages[0]?.location ?? START;
    throw new ExtensionRuleError(`${name} did not start with required ARG command`, file, at, warnings);
  }
  const stage = stages[0];
  if (!stage) throw new ExtensionRuleError(`${name} should have at least one stage`, file, metaArgs[0]!.location, warnings);
  if (stage.baseName !== BASE_IMAGE_REF) {
    throw new ExtensionRuleError(`${name} did not contain required FROM \${base_image} command`, file, stage.location, warnings);
  }
  return { kind: 'build', warnings, withBase: '', extend: stage.commands.length > 0 };
}

/**
 * `ValidateRunDockerfile`: one stage, either switching the run image
 * (`FROM <image>` alone; `withBase` is set) or extending `${base_image}`
 * (`extend` is true). Throws DockerfileError or ExtensionRuleError.
 */
export function validateRunDockerfile(input: Input, options: ExtensionCheckOptions = {}): ExtensionDockerfileInfo {
  const { file, instructions } = load(input, 'run', options);
  const { stages } = instructions;
  const name = DOCKERFILE_NAME.run;
  if (stages.length > 1) throw new ExtensionRuleError(`${name} is not permitted to use multistage build`, file, stages[1]!.location, []);
  if (stages.length === 0) {
    throw new ExtensionRuleError(`${name} should have at least one stage`, file, instructions.metaArgs[0]?.location ?? START, []);
  }
  const stage = stages[0]!;
  const warnings = warningsFor('run', instructions);
  return {
    kind: 'run',
    warnings,
    withBase: stage.baseName !== BASE_IMAGE_REF ? stage.baseName : '',
    extend: stage.commands.length > 0,
  };
}

/** Check an extension Dockerfile of either kind. */
export function validateExtensionDockerfile(input: Input, kind: ExtensionKind, options: ExtensionCheckOptions = {}): ExtensionDockerfileInfo {
  return kind === 'build' ? validateBuildDockerfile(input, options) : validateRunDockerfile(input, options);
}

/**
 * The lifecycle's extend-config.toml check: `build_id`, `user_id` and
 * `group_id` may not be set. Throws ReservedBuildArgError for the first one
 * (message `invalid content: arg with name "build_id" is not allowed`).
 */
export function validateExtendConfigArgs(names: Iterable<string>): void {
  for (const name of names) {
    if ((RESERVED_BUILD_ARGS as readonly string[]).includes(name)) throw new ReservedBuildArgError(name);
  }
}
