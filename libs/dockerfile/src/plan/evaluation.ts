/**
 * What evaluating one Dockerfile carries from instruction to instruction: the
 * options, build args, global variables and used args of the whole file, and
 * per stage its config, variables and ARGs.
 */
import { DockerfileError, type SourceRange } from '../errors.ts';
import type { Command, Stage } from '../instructions/types.ts';
import { expandWithMatches } from '../shell/lex.ts';
import { cloneConfig, type ImageConfig } from './config.ts';
import type { Platform, StagePlan } from './types.ts';
import { Vars } from './variables.ts';

export interface EvaluateOptions {
  /** `--build-arg` values. */
  buildArgs?: ReadonlyMap<string, string> | Readonly<Record<string, string>>;
  /**
   * The config of the image a stage starts from: one config for every image,
   * or a function of the (expanded) reference. Missing means an empty config.
   */
  baseConfig?: ImageConfig | ((ref: string) => ImageConfig | undefined);
  /** Stage to build (name); default the last stage. */
  target?: string;
  /** Target platform for TARGETPLATFORM & co (default linux and the host architecture). */
  platform?: Platform;
  /** Build platform for BUILDPLATFORM & co (default the target platform). */
  buildPlatform?: Platform;
  /** File name for error messages (default the parse result's). */
  file?: string;
}

export interface StageState {
  config: ImageConfig;
  env: Vars;
  /** ARGs declared in this stage (and inherited from the base stage). */
  args: { key: string; value?: string }[];
  cmdSet: boolean;
  author?: string;
}

export interface StageInfo {
  stage: Stage;
  /** The expanded base name. */
  baseName: string;
  /** Index of the earlier stage this one is built on, or -1. */
  baseStage: number;
  reachable: boolean;
  /** Stages this one's commands use (`COPY --from`, `RUN --mount=from=`). */
  deps: { stage: number; cmd: Command }[];
  plan?: StagePlan;
  /** The state after the last instruction, for stages built on this one. */
  state?: StageState;
}

/** A stage built on another starts from its state, without its ONBUILD triggers or CMD flag. */
export function cloneState(state: StageState): StageState {
  const config = cloneConfig(state.config);
  config.OnBuild = null;
  const clone: StageState = { config, env: new Vars(state.env), args: [...state.args], cmdSet: false };
  if (state.author !== undefined) clone.author = state.author;
  return clone;
}

export class Evaluation {
  readonly file: string;
  readonly buildArgs: Map<string, string>;
  readonly options: EvaluateOptions;
  readonly global: Vars;
  readonly escapeToken: string;
  readonly usedArgs = new Set<string>();

  constructor(file: string, escapeToken: string, options: EvaluateOptions, global: Vars) {
    this.file = file;
    this.escapeToken = escapeToken;
    this.options = options;
    this.global = global;
    const given = options.buildArgs;
    this.buildArgs = given instanceof Map ? new Map(given) : new Map(Object.entries((given ?? {}) as Record<string, string>));
  }

  fail(reason: string, range: SourceRange, cause?: unknown): never {
    throw new DockerfileError(reason, { kind: 'evaluation', file: this.file, range, cause });
  }

  /** `ProcessWord` with the given variables; errors become DockerfileErrors at `range`. */
  expand(word: string, vars: Vars, range: SourceRange): string {
    try {
      return expandWithMatches(word, vars.lookup, { escapeToken: this.escapeToken }).result;
    } catch (err) {
      return this.fail((err as Error).message, range, err);
    }
  }

  baseConfigFor(ref: string): ImageConfig | undefined {
    const base = this.options.baseConfig;
    return typeof base === 'function' ? base(ref) : base;
  }
}
