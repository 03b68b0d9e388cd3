/**
 * Typed instructions, as BuildKit's `instructions` package produces them from
 * the AST: arguments are split and flags parsed, but nothing is expanded yet.
 */
import type { InstructionNode } from '../ast.ts';
import type { SourceRange } from '../errors.ts';

export interface KeyValuePair {
  key: string;
  value: string;
  /** Legacy `ENV key value` form (no `=`). */
  noDelim: boolean;
}

export interface ArgDefinition {
  key: string;
  /** Default value; undefined for `ARG name` without `=`. */
  value?: string;
  /** The comment line `# <key> description` above the ARG, if any. */
  docComment: string;
}

/** An inline file of `COPY <<EOF /dest` or `ADD <<EOF /dest`. */
export interface SourceContent {
  /** The heredoc name, used as the file name. */
  path: string;
  /** Content; leading tabs already removed for `<<-`. */
  data: string;
  /** Whether `$VAR` in the content is expanded (delimiter not quoted). */
  expand: boolean;
}

/** A heredoc attached to RUN (or CMD/ENTRYPOINT) as a shell inline file. */
export interface InlineFile {
  name: string;
  /** Content as written (tabs not yet removed when `chomp`). */
  data: string;
  chomp: boolean;
}

export interface HealthConfig {
  /** `["NONE"]`, `["CMD", …]` (exec form) or `["CMD-SHELL", cmd]`. */
  test: string[];
  /** Nanoseconds; 0 means inherit. */
  interval: number;
  timeout: number;
  startPeriod: number;
  startInterval: number;
  retries: number;
}

interface CommandBase {
  /** The keyword as written. */
  name: string;
  location: SourceRange;
  /** The instruction's logical line, trimmed (BuildKit's `String()`): `RUN apt-get update && …`. */
  original: string;
  comments: string[];
  node: InstructionNode;
}

export interface EnvCommand extends CommandBase {
  kind: 'env';
  pairs: KeyValuePair[];
}

export interface LabelCommand extends CommandBase {
  kind: 'label';
  pairs: KeyValuePair[];
}

export interface MaintainerCommand extends CommandBase {
  kind: 'maintainer';
  maintainer: string;
}

interface CopyLike extends CommandBase {
  /** Source paths (or URLs for ADD), unexpanded. */
  sources: string[];
  /** Heredoc sources. */
  sourceContents: SourceContent[];
  dest: string;
  chown: string;
  chmod: string;
  link: boolean;
  exclude: string[];
}

export interface AddCommand extends CopyLike {
  kind: 'add';
  keepGitDir?: boolean;
  checksum: string;
  unpack?: boolean;
}

export interface CopyCommand extends CopyLike {
  kind: 'copy';
  /** `--from`: stage name, stage index or image; empty for the build context. */
  from: string;
  parents: boolean;
}

export interface OnbuildCommand extends CommandBase {
  kind: 'onbuild';
  /** The trigger as it will be stored in the image config (`RUN echo hi`). */
  expression: string;
}

export interface WorkdirCommand extends CommandBase {
  kind: 'workdir';
  path: string;
}

export type NetworkMode = 'default' | 'none' | 'host';
export type SecurityMode = 'sandbox' | 'insecure';

interface CommandLine {
  /** Shell form: one string (the arguments joined); exec form: the JSON elements. */
  command: string[];
  /** True for shell form: the command runs through the shell (`/bin/sh -c`). */
  shellForm: boolean;
  heredocs: InlineFile[];
}

export interface RunCommand extends CommandBase, CommandLine {
  kind: 'run';
  /** `--mount` values as written; parsed and expanded by `evaluate`. */
  mountSpecs: string[];
  network: NetworkMode;
  security: SecurityMode;
  /** `--device` values as written. */
  deviceSpecs: string[];
  /** Names of the flags given. */
  flagsUsed: string[];
}

export interface CmdCommand extends CommandBase, CommandLine {
  kind: 'cmd';
}

export interface EntrypointCommand extends CommandBase, CommandLine {
  kind: 'entrypoint';
}

export interface HealthcheckCommand extends CommandBase {
  kind: 'healthcheck';
  health: HealthConfig;
}

export interface ExposeCommand extends CommandBase {
  kind: 'expose';
  /** Port specs as written (sorted, as BuildKit does), unexpanded. */
  ports: string[];
}

export interface UserCommand extends CommandBase {
  kind: 'user';
  user: string;
}

export interface VolumeCommand extends CommandBase {
  kind: 'volume';
  volumes: string[];
}

export interface StopSignalCommand extends CommandBase {
  kind: 'stopsignal';
  signal: string;
}

export interface ArgCommand extends CommandBase {
  kind: 'arg';
  args: ArgDefinition[];
}

export interface ShellCommand extends CommandBase {
  kind: 'shell';
  shell: string[];
}

/** Every instruction except FROM. */
export type Command =
  | EnvCommand
  | LabelCommand
  | MaintainerCommand
  | AddCommand
  | CopyCommand
  | OnbuildCommand
  | WorkdirCommand
  | RunCommand
  | CmdCommand
  | EntrypointCommand
  | HealthcheckCommand
  | ExposeCommand
  | UserCommand
  | VolumeCommand
  | StopSignalCommand
  | ArgCommand
  | ShellCommand;

export type CommandKind = Command['kind'];

/** A build stage: a FROM and the instructions after it. */
export interface Stage {
  /** `AS name`, lower-cased; empty when unnamed. */
  name: string;
  /** The image or stage reference as written (`${base_image}`), unexpanded. */
  baseName: string;
  /** `--platform`, unexpanded. */
  platform: string;
  /** The FROM keyword as written. */
  command: string;
  /** The FROM line, trimmed. */
  original: string;
  location: SourceRange;
  comments: string[];
  /** The comment `# <name> description` above `FROM … AS <name>`. */
  docComment: string;
  commands: Command[];
  node: InstructionNode;
}

/** A Dockerfile split into typed instructions (BuildKit's `instructions.Parse`). */
export interface Instructions {
  /** ARG instructions before the first FROM. */
  metaArgs: ArgCommand[];
  stages: Stage[];
}
