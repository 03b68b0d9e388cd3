/**
 * AST → typed instructions, following BuildKit's `instructions/parse.go`:
 * argument counts, flags, heredoc sources and stage structure are checked
 * here, with BuildKit's error messages.
 */
import type { DockerfileAst, InstructionNode } from '../ast.ts';
import { DockerfileError, type SourceRange } from '../errors.ts';
import { equalFoldAscii, goLower, goQuote, goUpper, trimSpace, withSuggestion } from '../go.ts';
import { chompHeredocContent, parseHeredoc, type HeredocSpec } from '../heredoc.ts';
import type { ParseResult } from '../parser.ts';
import { formatGoDuration, parseGoDuration, parseGoInt32 } from './duration.ts';
import { BFlags, FlagError } from './flags.ts';
import { parseDevice, parseMount } from './mount.ts';
import type {
  AddCommand,
  ArgCommand,
  ArgDefinition,
  CmdCommand,
  Command,
  CopyCommand,
  EntrypointCommand,
  EnvCommand,
  ExposeCommand,
  HealthcheckCommand,
  InlineFile,
  Instructions,
  KeyValuePair,
  LabelCommand,
  MaintainerCommand,
  NetworkMode,
  OnbuildCommand,
  RunCommand,
  SecurityMode,
  ShellCommand,
  SourceContent,
  Stage,
  StopSignalCommand,
  UserCommand,
  VolumeCommand,
  WorkdirCommand,
} from './types.ts';

/** The instruction keywords BuildKit knows. */
export const INSTRUCTION_NAMES = [
  'ADD',
  'ARG',
  'CMD',
  'COPY',
  'ENTRYPOINT',
  'ENV',
  'EXPOSE',
  'FROM',
  'HEALTHCHECK',
  'LABEL',
  'MAINTAINER',
  'ONBUILD',
  'RUN',
  'SHELL',
  'STOPSIGNAL',
  'USER',
  'VOLUME',
  'WORKDIR',
] as const;

/** An instruction error; `range` narrows the location when known. */
class InstructionError extends Error {
  readonly range: SourceRange | undefined;

  constructor(message: string, range?: SourceRange) {
    super(message);
    this.range = range;
  }
}

interface Request {
  node: InstructionNode;
  command: string;
  args: string[];
  flags: BFlags;
  base: { name: string; location: SourceRange; original: string; comments: string[]; node: InstructionNode };
}

function nodeArgs(node: InstructionNode): string[] {
  const out: string[] = [];
  for (let n: InstructionNode | undefined = node; n; n = n.trigger) {
    for (const a of n.args) out.push(a.value);
    if (n.trigger) out.push(n.trigger.command);
  }
  return out;
}

function parseFlags(req: Request): void {
  try {
    req.flags.parse();
  } catch (err) {
    if (err instanceof FlagError) throw new InstructionError(err.message, req.node.flags[err.index]?.range);
    throw err;
  }
}

function errAtLeastOne(command: string): InstructionError {
  return new InstructionError(`${command} requires at least one argument`);
}

function errExactlyOne(command: string): InstructionError {
  return new InstructionError(`${command} requires exactly one argument`);
}

function errNoDestination(command: string): InstructionError {
  return new InstructionError(`${command} requires at least two arguments, but only one was provided. Destination could not be determined`);
}

function parseKvps(args: string[], command: string): KeyValuePair[] {
  if (args.length === 0) throw errAtLeastOne(command);
  if (args.length % 3 !== 0) throw new InstructionError(`Bad input to ${command}, too many arguments`);
  const pairs: KeyValuePair[] = [];
  for (let j = 0; j < args.length; j += 3) {
    if (args[j]!.length === 0) throw new InstructionError(`${command} names can not be blank`);
    pairs.push({ key: args[j]!, value: args[j + 1]!, noDelim: args[j + 2] === '' });
  }
  return pairs;
}

function mustParseHeredoc(src: string): HeredocSpec | undefined {
  try {
    return parseHeredoc(src);
  } catch {
    return undefined;
  }
}

function sourcesAndDest(req: Request, command: string): { sources: string[]; sourceContents: SourceContent[]; dest: string } {
  const srcs = req.args.slice(0, -1);
  const dest = req.args[req.args.length - 1]!;
  if (mustParseHeredoc(dest)) throw new InstructionError(`${command} cannot accept a heredoc as a destination`);
  const lookup = new Map(req.node.heredocs.map((h) => [h.name, h]));
  const sources: string[] = [];
  const sourceContents: SourceContent[] = [];
  for (const src of srcs) {
    const heredoc = mustParseHeredoc(src);
    if (!heredoc) {
      sources.push(src);
      continue;
    }
    let data = lookup.get(heredoc.name)?.content ?? '';
    if (heredoc.chomp) data = chompHeredocContent(data);
    sourceContents.push({ path: heredoc.name, data, expand: heredoc.expand });
  }
  return { sources, sourceContents, dest };
}

function commandLine(req: Request): { command: string[]; shellForm: boolean; heredocs: InlineFile[] } {
  const heredocs = req.node.heredocs.map((h) => ({ name: h.name, data: h.content, chomp: h.chomp }));
  const json = req.node.json;
  let command: string[];
  if (req.args.length === 0) command = [];
  else if (json) command = req.args;
  else command = [req.args.join(' ')];
  return { command, shellForm: !json, heredocs };
}

function docComment(comments: readonly string[], name: string): string {
  if (name === '') return '';
  for (const line of comments) if (line.startsWith(`${name} `)) return line.slice(name.length + 1);
  return '';
}

const VALID_STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

function parseFrom(req: Request): Stage {
  const args = req.args;
  let name = '';
  if (args.length === 3 && equalFoldAscii(args[1]!, 'as')) {
    name = goLower(args[2]!);
    if (!VALID_STAGE_NAME.test(name)) {
      throw new InstructionError(`invalid name for build stage: ${goQuote(args[2]!)}, name can't start with a number or contain symbols`);
    }
  } else if (args.length !== 1) {
    throw new InstructionError('FROM requires either one or three arguments');
  }
  req.flags.addString('platform', '');
  parseFlags(req);
  return {
    name,
    baseName: args[0]!,
    platform: req.flags.string('platform'),
    command: req.command,
    original: req.base.original,
    location: req.base.location,
    comments: req.base.comments,
    docComment: docComment(req.base.comments, name),
    commands: [],
    node: req.node,
  };
}

function parseEnv(req: Request): EnvCommand {
  parseFlags(req);
  return { kind: 'env', ...req.base, pairs: parseKvps(req.args, 'ENV') };
}

function parseLabel(req: Request): LabelCommand {
  parseFlags(req);
  return { kind: 'label', ...req.base, pairs: parseKvps(req.args, 'LABEL') };
}

function parseMaintainer(req: Request): MaintainerCommand {
  if (req.args.length !== 1) throw errExactlyOne('MAINTAINER');
  parseFlags(req);
  return { kind: 'maintainer', ...req.base, maintainer: req.args[0]! };
}

function parseAdd(req: Request): AddCommand {
  if (req.args.length < 2) throw errNoDestination('ADD');
  const f = req.flags;
  f.addString('chown', '');
  f.addString('chmod', '');
  f.addBool('link', false);
  f.addBool('keep-git-dir', false);
  f.addString('checksum', '');
  f.addBool('unpack', false);
  f.addStrings('exclude');
  parseFlags(req);
  const cmd: AddCommand = {
    kind: 'add',
    ...req.base,
    ...sourcesAndDest(req, 'ADD'),
    chown: f.string('chown'),
    chmod: f.string('chmod'),
    link: f.bool('link'),
    exclude: f.strings('exclude'),
    checksum: f.string('checksum'),
  };
  if (f.isUsed('keep-git-dir')) cmd.keepGitDir = f.bool('keep-git-dir');
  if (f.isUsed('unpack')) cmd.unpack = f.bool('unpack');
  return cmd;
}

function parseCopy(req: Request): CopyCommand {
  if (req.args.length < 2) throw errNoDestination('COPY');
  const f = req.flags;
  f.addString('chown', '');
  f.addString('from', '');
  f.addString('chmod', '');
  f.addBool('link', false);
  f.addStrings('exclude');
  f.addBool('parents', false);
  parseFlags(req);
  return {
    kind: 'copy',
    ...req.base,
    ...sourcesAndDest(req, 'COPY'),
    from: f.string('from'),
    chown: f.string('chown'),
    chmod: f.string('chmod'),
    link: f.bool('link'),
    exclude: f.strings('exclude'),
    parents: f.bool('parents'),
  };
}

function parseOnbuild(req: Request): OnbuildCommand {
  if (req.args.length === 0) throw errAtLeastOne('ONBUILD');
  parseFlags(req);
  const trigger = goUpper(trimSpace(req.args[0]!));
  if (trigger === 'ONBUILD') throw new InstructionError('Chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (trigger === 'MAINTAINER' || trigger === 'FROM') throw new InstructionError(`${trigger} isn't allowed as an ONBUILD trigger`);
  let expression = req.node.original.replace(/^[\t\n\f\r ]*onbuild[\t\n\f\r ]*/i, '');
  for (const heredoc of req.node.heredocs) expression += `\n${heredoc.content}${heredoc.name}`;
  return { kind: 'onbuild', ...req.base, expression };
}

function parseWorkdir(req: Request): WorkdirCommand {
  if (req.args.length !== 1) throw errExactlyOne('WORKDIR');
  parseFlags(req);
  return { kind: 'workdir', ...req.base, path: req.args[0]! };
}

const NETWORK_MODES: readonly NetworkMode[] = ['default', 'none', 'host'];
const SECURITY_MODES: readonly SecurityMode[] = ['sandbox', 'insecure'];

function parseRun(req: Request): RunCommand {
  const f = req.flags;
  f.addStrings('device');
  f.addStrings('mount');
  f.addString('network', 'default');
  f.addString('security', 'sandbox');
  parseFlags(req);
  const flagsUsed = f.used();
  const line = commandLine(req);
  const deviceSpecs = f.strings('device');
  for (const spec of deviceSpecs) wrap(() => parseDevice(spec));
  const mountSpecs = f.strings('mount');
  for (const spec of mountSpecs) wrap(() => parseMount(spec));
  const network = f.string('network');
  if (!(NETWORK_MODES as readonly string[]).includes(network)) throw new InstructionError(`invalid network mode ${goQuote(network)}`);
  const security = f.string('security');
  if (!(SECURITY_MODES as readonly string[]).includes(security)) throw new InstructionError(`security ${goQuote(security)} is not valid`);
  return {
    kind: 'run',
    ...req.base,
    ...line,
    mountSpecs,
    network: network as NetworkMode,
    security: security as SecurityMode,
    deviceSpecs,
    flagsUsed,
  };
}

function wrap<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw new InstructionError((err as Error).message);
  }
}

function parseCmd(req: Request): CmdCommand {
  parseFlags(req);
  return { kind: 'cmd', ...req.base, ...commandLine(req) };
}

function parseEntrypoint(req: Request): EntrypointCommand {
  parseFlags(req);
  return { kind: 'entrypoint', ...req.base, ...commandLine(req) };
}

function parseInterval(flags: BFlags, name: string): number {
  const value = flags.string(name);
  if (value === '') return 0;
  const d = wrap(() => parseGoDuration(value));
  if (d === 0) return 0;
  if (d < 1000000) throw new InstructionError(`Interval ${goQuote(name)} cannot be less than ${formatGoDuration(1000000)}`);
  return d;
}

function parseHealthcheck(req: Request): HealthcheckCommand {
  if (req.args.length === 0) throw errAtLeastOne('HEALTHCHECK');
  const typ = goUpper(req.args[0]!);
  const args = req.args.slice(1);
  const health = { test: [typ], interval: 0, timeout: 0, startPeriod: 0, startInterval: 0, retries: 0 };
  if (typ === 'NONE') {
    if (args.length !== 0) throw new InstructionError('HEALTHCHECK NONE takes no arguments');
    return { kind: 'healthcheck', ...req.base, health };
  }
  const f = req.flags;
  for (const name of ['interval', 'timeout', 'start-period', 'start-interval', 'retries']) f.addString(name, '');
  parseFlags(req);
  if (typ !== 'CMD') throw new InstructionError(`Unknown type ${goQuote(typ)} in HEALTHCHECK (try CMD)`);
  const cmd = args.length === 0 ? [] : req.node.json ? args : [args.join(' ')];
  if (cmd.length === 0) throw new InstructionError('Missing command after HEALTHCHECK CMD');
  health.test = [req.node.json ? typ : 'CMD-SHELL', ...cmd];
  health.interval = parseInterval(f, 'interval');
  health.timeout = parseInterval(f, 'timeout');
  health.startPeriod = parseInterval(f, 'start-period');
  health.startInterval = parseInterval(f, 'start-interval');
  const retries = f.string('retries');
  if (retries !== '') {
    const n = wrap(() => parseGoInt32(retries));
    if (n < 0) throw new InstructionError(`--retries cannot be negative (${n})`);
    health.retries = n;
  }
  return { kind: 'healthcheck', ...req.base, health };
}

function parseExpose(req: Request): ExposeCommand {
  if (req.args.length === 0) throw errAtLeastOne('EXPOSE');
  parseFlags(req);
  return { kind: 'expose', ...req.base, ports: [...req.args].sort() };
}

function parseUser(req: Request): UserCommand {
  if (req.args.length !== 1) throw errExactlyOne('USER');
  parseFlags(req);
  return { kind: 'user', ...req.base, user: req.args[0]! };
}

function parseVolume(req: Request): VolumeCommand {
  if (req.args.length === 0) throw errAtLeastOne('VOLUME');
  parseFlags(req);
  const volumes = req.args.map((v) => {
    const trimmed = trimSpace(v);
    if (trimmed === '') throw new InstructionError('VOLUME specified can not be an empty string');
    return trimmed;
  });
  return { kind: 'volume', ...req.base, volumes };
}

function parseStopSignal(req: Request): StopSignalCommand {
  if (req.args.length !== 1) throw errExactlyOne('STOPSIGNAL');
  return { kind: 'stopsignal', ...req.base, signal: req.args[0]! };
}

function parseArg(req: Request): ArgCommand {
  if (req.args.length < 1) throw errAtLeastOne('ARG');
  const args: ArgDefinition[] = req.args.map((arg) => {
    const eq = arg.indexOf('=');
    const def: ArgDefinition = { key: eq < 0 ? arg : arg.slice(0, eq), docComment: '' };
    if (eq >= 0) {
      if (eq === 0) throw new InstructionError('ARG names can not be blank');
      def.value = arg.slice(eq + 1);
    }
    def.docComment = docComment(req.base.comments, def.key);
    return def;
  });
  return { kind: 'arg', ...req.base, args };
}

function parseShell(req: Request): ShellCommand {
  parseFlags(req);
  const { command } = commandLine(req);
  if (command.length === 0) throw errAtLeastOne('SHELL');
  if (!req.node.json) throw new InstructionError('SHELL requires the arguments to be in JSON form');
  return { kind: 'shell', ...req.base, shell: command };
}

const PARSERS: Record<string, (req: Request) => Command> = {
  env: parseEnv,
  maintainer: parseMaintainer,
  label: parseLabel,
  add: parseAdd,
  copy: parseCopy,
  onbuild: parseOnbuild,
  workdir: parseWorkdir,
  run: parseRun,
  cmd: parseCmd,
  healthcheck: parseHealthcheck,
  entrypoint: parseEntrypoint,
  expose: parseExpose,
  user: parseUser,
  volume: parseVolume,
  stopsignal: parseStopSignal,
  arg: parseArg,
  shell: parseShell,
};

function request(node: InstructionNode): Request {
  return {
    node,
    command: node.command,
    args: nodeArgs(node),
    flags: new BFlags(node.flags.map((f) => f.value)),
    base: { name: node.command, location: node.range, original: trimSpace(node.original), comments: node.comments, node },
  };
}

/**
 * One instruction node → a typed command or a stage (for FROM). Throws
 * DockerfileError (kind `instruction`) with BuildKit's message.
 */
export function parseInstruction(node: InstructionNode, file = 'Dockerfile'): Command | Stage {
  const req = request(node);
  try {
    if (node.keyword === 'from') return parseFrom(req);
    const parser = Object.hasOwn(PARSERS, node.keyword) ? PARSERS[node.keyword] : undefined;
    if (!parser) {
      throw new InstructionError(withSuggestion(`unknown instruction: ${node.command}`, node.command, INSTRUCTION_NAMES, false));
    }
    return parser(req);
  } catch (err) {
    if (err instanceof InstructionError) {
      throw new DockerfileError(err.message, { kind: 'instruction', file, range: err.range ?? node.range, cause: err });
    }
    throw err;
  }
}

function isStage(value: Command | Stage): value is Stage {
  return !('kind' in value);
}

/**
 * Split a parsed Dockerfile into meta ARGs (before the first FROM) and stages
 * (BuildKit's `instructions.Parse`). Throws DockerfileError.
 */
export function parseInstructions(input: ParseResult | DockerfileAst, options: { file?: string } = {}): Instructions {
  const ast = 'ast' in input ? input.ast : input;
  const file = options.file ?? ('file' in input ? input.file : 'Dockerfile');
  const metaArgs: ArgCommand[] = [];
  const stages: Stage[] = [];
  for (const node of ast.children) {
    const cmd = parseInstruction(node, file);
    if (stages.length === 0 && !isStage(cmd) && cmd.kind === 'arg') {
      metaArgs.push(cmd);
      continue;
    }
    if (isStage(cmd)) {
      stages.push(cmd);
      continue;
    }
    const stage = stages[stages.length - 1];
    if (!stage) throw new DockerfileError('no build stage in current context', { kind: 'instruction', file, range: node.range });
    stage.commands.push(cmd);
  }
  return { metaArgs, stages };
}
