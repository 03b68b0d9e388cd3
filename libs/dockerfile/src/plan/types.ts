/**
 * The evaluated plan: every instruction of every stage with its arguments
 * expanded for a given set of build args and base image config, in the order a
 * backend executes them, plus the image config each stage ends with.
 */
import type { SourceRange } from '../errors.ts';
import type { Mount, Device } from '../instructions/mount.ts';
import type { Command, HealthConfig, InlineFile, NetworkMode, SecurityMode, SourceContent, Stage } from '../instructions/types.ts';
import type { ImageConfig } from './config.ts';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

interface StepBase {
  /** The typed instruction this step comes from (unexpanded). */
  instruction: Command;
  location: SourceRange;
  /**
   * The instruction as written, continuation lines joined and trimmed
   * (`RUN apt-get update && apt-get install -y curl`, `COPY run-file /`): what
   * history entries quote.
   */
  original: string;
  /** True for triggers inherited from the base image's ONBUILD. */
  onbuild: boolean;
  /** True when the step changes the filesystem (RUN, COPY, ADD, and WORKDIR other than `/`). */
  changesFilesystem: boolean;
}

/** Proxy settings BuildKit hands to RUN from the `*_proxy` build args (not part of the image). */
export interface ProxyEnv {
  httpProxy?: string;
  httpsProxy?: string;
  ftpProxy?: string;
  noProxy?: string;
  allProxy?: string;
}

/** A mount with its target resolved against the working directory and defaults filled in. */
export interface ResolvedMount extends Mount {
  /** Absolute target inside the container (secret/ssh: where it appears, if anywhere). */
  resolvedTarget: string;
  /** Index of the stage `from=` names, when it names one. */
  fromStage?: number;
}

export interface RunStep extends StepBase {
  kind: 'run';
  /** Shell form (run through the shell) or exec form. */
  shellForm: boolean;
  /** Shell form: the command string; exec form: the JSON elements (neither is expanded: the shell does that). */
  command: string[];
  /** The heredocs of the instruction (content as written). */
  heredocs: InlineFile[];
  /** The process to start: shell prepended for shell form, heredocs folded in as BuildKit does. */
  argv: string[];
  /**
   * For `RUN <<EOF` whose body starts with `#!`: BuildKit writes the body to
   * this read-only file (mode 0755) and runs it.
   */
  inlineScript?: { path: string; data: string; mode: number };
  /**
   * The process environment (`KEY=VALUE`): image env, then ARG values in scope.
   * Frozen; consecutive steps with the same environment share one array.
   */
  env: readonly string[];
  /** Proxy variables from build args (`http_proxy`, …). */
  proxy: ProxyEnv;
  user: string;
  /** Absolute working directory. */
  workdir: string;
  mounts: ResolvedMount[];
  network: NetworkMode;
  security: SecurityMode;
  devices: Device[];
}

interface CopyStepBase extends StepBase {
  /** Source paths (ADD: or URLs), expanded. */
  sources: string[];
  /** Heredoc sources, expanded when their delimiter was not quoted. */
  sourceContents: SourceContent[];
  /** Destination as written, expanded. */
  dest: string;
  /** Absolute destination; a trailing `/` (directory) is kept. */
  destPath: string;
  chown: string;
  chmod: string;
  link: boolean;
  exclude: string[];
  /** The working directory when the step runs. */
  workdir: string;
}

export interface CopyStep extends CopyStepBase {
  kind: 'copy';
  /** `--from` as written; empty for the build context. */
  from: string;
  /** Index of the stage `--from` names, when it names one (by name or index). */
  fromStage?: number;
  parents: boolean;
}

export interface AddStep extends CopyStepBase {
  kind: 'add';
  checksum: string;
  keepGitDir?: boolean;
  unpack?: boolean;
}

export interface EnvStep extends StepBase {
  kind: 'env';
  pairs: { key: string; value: string }[];
}

export interface ArgStep extends StepBase {
  kind: 'arg';
  /** Each ARG with its value (build arg, default or global value); undefined when it has none. */
  args: { key: string; value?: string }[];
}

export interface LabelStep extends StepBase {
  kind: 'label';
  pairs: { key: string; value: string }[];
}

export interface UserStep extends StepBase {
  kind: 'user';
  user: string;
}

export interface WorkdirStep extends StepBase {
  kind: 'workdir';
  /** As written, expanded. */
  path: string;
  /** The new absolute working directory (created if missing). */
  workdir: string;
  /** The user the directory is created as (BuildKit uses the current USER). */
  user: string;
}

export interface ShellStep extends StepBase {
  kind: 'shell';
  shell: string[];
}

export interface CmdStep extends StepBase {
  kind: 'cmd';
  shellForm: boolean;
  command: string[];
  /** The value stored in the config (`Cmd`). */
  value: string[];
}

export interface EntrypointStep extends StepBase {
  kind: 'entrypoint';
  shellForm: boolean;
  command: string[];
  /** The value stored in the config (`Entrypoint`); null for `ENTRYPOINT []`. */
  value: string[] | null;
}

export interface ExposeStep extends StepBase {
  kind: 'expose';
  /** `port/proto` entries. */
  ports: string[];
}

export interface VolumeStep extends StepBase {
  kind: 'volume';
  volumes: string[];
}

export interface StopSignalStep extends StepBase {
  kind: 'stopsignal';
  signal: string;
}

export interface HealthcheckStep extends StepBase {
  kind: 'healthcheck';
  health: HealthConfig;
}

export interface OnbuildStep extends StepBase {
  kind: 'onbuild';
  expression: string;
}

export interface MaintainerStep extends StepBase {
  kind: 'maintainer';
  maintainer: string;
}

export type Step =
  | RunStep
  | CopyStep
  | AddStep
  | EnvStep
  | ArgStep
  | LabelStep
  | UserStep
  | WorkdirStep
  | ShellStep
  | CmdStep
  | EntrypointStep
  | ExposeStep
  | VolumeStep
  | StopSignalStep
  | HealthcheckStep
  | OnbuildStep
  | MaintainerStep;

export type StageBase =
  /** An image reference (expanded). */
  | { kind: 'image'; ref: string }
  /** An earlier stage. */
  | { kind: 'stage'; index: number; name: string }
  | { kind: 'scratch' };

export interface StagePlan {
  index: number;
  /** `AS` name, lower-cased; empty when unnamed. */
  name: string;
  base: StageBase;
  /**
   * False when the target does not need this stage: like BuildKit, it is then
   * not evaluated (no steps, empty config).
   */
  reachable: boolean;
  /** `--platform`, expanded; empty when not given. */
  platform: string;
  stage: Stage;
  steps: Step[];
  /** The image config after the last step. */
  config: ImageConfig;
  /** `MAINTAINER` value, when set. */
  author?: string;
}

export interface Plan {
  file: string;
  /** ARGs before the first FROM with their values. */
  globalArgs: { key: string; value?: string }[];
  /** Every stage, in order (each evaluated on top of its base). */
  stages: StagePlan[];
  /** Index of the target stage (the last one unless a target was named). */
  target: number;
  /** Build args no ARG declared (BuildKit warns about these); built-in and proxy args excluded. */
  unusedBuildArgs: string[];
}
