/**
 * Dispatch: one instruction of a stage → one plan step, changing the stage's
 * config and variables the way BuildKit's `dispatch` does. One function per
 * instruction kind, looked up in a table.
 */
import { DockerfileError, type SourceRange } from '../errors.ts';
import { goQuote, goQuoteSlice } from '../go.ts';
import { chompHeredocContent, parseHeredoc } from '../heredoc.ts';
import { parseDevice, parseMount } from '../instructions/mount.ts';
import type { Command, SourceContent } from '../instructions/types.ts';
import { expandWithMatches } from '../shell/lex.ts';
import { addEnv, cleanPath, DEFAULT_SHELL, destPath, joinPath, normalizeWorkdir, parsePorts, parseSignal, type ImageConfig } from './config.ts';
import type { Evaluation, StageInfo, StageState } from './evaluation.ts';
import { stageByName, stageName, stageRef } from './stages.ts';
import type { ProxyEnv, ResolvedMount, Step } from './types.ts';
import { NON_ENV_ARGS, type Vars } from './variables.ts';

/** What every instruction of a stage is dispatched with. */
interface Dispatch {
  ev: Evaluation;
  onbuild: boolean;
  state: StageState;
  stages: StageInfo[];
  /** The index of the stage being dispatched. */
  index: number;
  proxy: ProxyEnv;
  /** Expand a word with the stage's variables; errors point at the instruction. */
  x: (word: string) => string;
}

type CommandOf<K extends Command['kind']> = Extract<Command, { kind: K }>;
type Dispatcher<K extends Command['kind']> = (d: Dispatch, cmd: CommandOf<K>) => Step;

function withShell(config: ImageConfig, args: readonly string[]): string[] {
  const shell = config.Shell && config.Shell.length > 0 ? config.Shell : DEFAULT_SHELL;
  return [...shell, args.join(' ')];
}

function stepBase(cmd: Command, onbuild: boolean, changesFilesystem = false) {
  return { instruction: cmd, location: cmd.location, original: cmd.original, onbuild, changesFilesystem };
}

function workdirOf(state: StageState): string {
  return state.config.WorkingDir || '/';
}

/** Go's `path.Base`. */
function baseName(p: string): string {
  if (p === '') return '.';
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

/** Dispatch one instruction of stage `index`: the step it becomes, its effect applied to `state`. */
export function dispatch(ev: Evaluation, cmd: Command, onbuild: boolean, state: StageState, stages: StageInfo[], index: number, proxy: ProxyEnv): Step {
  const x = (word: string): string => ev.expand(word, state.env, cmd.location);
  const handler = DISPATCHERS[cmd.kind] as Dispatcher<Command['kind']>;
  return handler({ ev, onbuild, state, stages, index, proxy, x }, cmd);
}

const DISPATCHERS: { [K in Command['kind']]: Dispatcher<K> } = {
  env: dispatchEnv,
  label: dispatchLabel,
  maintainer: dispatchMaintainer,
  arg: dispatchArg,
  user: dispatchUser,
  workdir: dispatchWorkdir,
  volume: dispatchVolume,
  stopsignal: dispatchStopSignal,
  expose: dispatchExpose,
  shell: dispatchShell,
  cmd: dispatchCmd,
  entrypoint: dispatchEntrypoint,
  healthcheck: dispatchHealthcheck,
  onbuild: dispatchOnbuild,
  run: dispatchRun,
  copy: dispatchCopyOrAdd,
  add: dispatchCopyOrAdd,
};

function dispatchEnv(d: Dispatch, cmd: CommandOf<'env'>): Step {
  const pairs = cmd.pairs.map((p) => ({ key: d.x(p.key), value: d.x(p.value) }));
  for (const p of pairs) {
    d.state.env.set(p.key, p.value);
    d.state.config.Env = addEnv(d.state.config.Env, p.key, p.value);
  }
  return { kind: 'env', ...stepBase(cmd, d.onbuild), pairs };
}

function dispatchLabel(d: Dispatch, cmd: CommandOf<'label'>): Step {
  const config = d.state.config;
  const pairs = cmd.pairs.map((p) => ({ key: d.x(p.key), value: d.x(p.value) }));
  config.Labels = { ...config.Labels };
  for (const p of pairs) config.Labels[p.key] = p.value;
  return { kind: 'label', ...stepBase(cmd, d.onbuild), pairs };
}

function dispatchMaintainer(d: Dispatch, cmd: CommandOf<'maintainer'>): Step {
  d.state.author = cmd.maintainer;
  return { kind: 'maintainer', ...stepBase(cmd, d.onbuild), maintainer: cmd.maintainer };
}

/** A stage ARG takes the build arg, else its default, else the global value of that name. */
function dispatchArg(d: Dispatch, cmd: CommandOf<'arg'>): Step {
  const { ev, state } = d;
  const args: { key: string; value?: string }[] = [];
  for (const def of cmd.args) {
    ev.usedArgs.add(def.key);
    let value: string | undefined;
    if (ev.buildArgs.has(def.key)) value = ev.buildArgs.get(def.key);
    else if (def.value !== undefined) value = d.x(def.value);
    else value = ev.global.get(def.key);
    if (value !== undefined && !NON_ENV_ARGS.has(def.key)) state.env.set(def.key, value);
    const resolved = value === undefined ? { key: def.key } : { key: def.key, value };
    args.push(resolved);
    state.args.push(resolved);
  }
  return { kind: 'arg', ...stepBase(cmd, d.onbuild), args };
}

function dispatchUser(d: Dispatch, cmd: CommandOf<'user'>): Step {
  const user = d.x(cmd.user);
  d.state.config.User = user;
  return { kind: 'user', ...stepBase(cmd, d.onbuild), user };
}

function dispatchWorkdir(d: Dispatch, cmd: CommandOf<'workdir'>): Step {
  const config = d.state.config;
  const path = d.x(cmd.path);
  const workdir = normalizeWorkdir(config.WorkingDir ?? '', path);
  config.WorkingDir = workdir;
  return { kind: 'workdir', ...stepBase(cmd, d.onbuild, workdir !== '/'), path, workdir, user: config.User ?? '' };
}

function dispatchVolume(d: Dispatch, cmd: CommandOf<'volume'>): Step {
  const config = d.state.config;
  const volumes = cmd.volumes.map(d.x);
  config.Volumes = { ...config.Volumes };
  for (const v of volumes) {
    if (v === '') d.ev.fail('VOLUME specified can not be an empty string', cmd.location);
    config.Volumes[v] = {};
  }
  return { kind: 'volume', ...stepBase(cmd, d.onbuild), volumes };
}

function dispatchStopSignal(d: Dispatch, cmd: CommandOf<'stopsignal'>): Step {
  const signal = d.x(cmd.signal);
  try {
    parseSignal(signal);
  } catch (err) {
    d.ev.fail((err as Error).message, cmd.location, err);
  }
  d.state.config.StopSignal = signal;
  return { kind: 'stopsignal', ...stepBase(cmd, d.onbuild), signal };
}

/** EXPOSE expands each spec into words (a variable may hold several ports). */
function dispatchExpose(d: Dispatch, cmd: CommandOf<'expose'>): Step {
  const { ev, state } = d;
  const at = cmd.location;
  const specs: string[] = [];
  for (const p of cmd.ports) {
    try {
      specs.push(...expandWithMatches(p, state.env.lookup, { escapeToken: ev.escapeToken }).words);
    } catch (err) {
      ev.fail((err as Error).message, at, err);
    }
  }
  let ports: string[] = [];
  try {
    ports = parsePorts(specs);
  } catch (err) {
    ev.fail((err as Error).message, at, err);
  }
  const config = state.config;
  config.ExposedPorts = { ...config.ExposedPorts };
  for (const p of ports) config.ExposedPorts[p] = {};
  return { kind: 'expose', ...stepBase(cmd, d.onbuild), ports };
}

function dispatchShell(d: Dispatch, cmd: CommandOf<'shell'>): Step {
  d.state.config.Shell = [...cmd.shell];
  return { kind: 'shell', ...stepBase(cmd, d.onbuild), shell: [...cmd.shell] };
}

function dispatchCmd(d: Dispatch, cmd: CommandOf<'cmd'>): Step {
  const config = d.state.config;
  const value = cmd.shellForm ? withShell(config, cmd.command) : [...cmd.command];
  config.Cmd = value;
  config.ArgsEscaped = true;
  d.state.cmdSet = true;
  return { kind: 'cmd', ...stepBase(cmd, d.onbuild), shellForm: cmd.shellForm, command: cmd.command, value };
}

/** ENTRYPOINT clears a CMD inherited from the base, not one this stage set. */
function dispatchEntrypoint(d: Dispatch, cmd: CommandOf<'entrypoint'>): Step {
  const config = d.state.config;
  const value = cmd.shellForm ? withShell(config, cmd.command) : cmd.command.length === 0 ? null : [...cmd.command];
  config.Entrypoint = value;
  if (!d.state.cmdSet) config.Cmd = null;
  return { kind: 'entrypoint', ...stepBase(cmd, d.onbuild), shellForm: cmd.shellForm, command: cmd.command, value };
}

function dispatchHealthcheck(d: Dispatch, cmd: CommandOf<'healthcheck'>): Step {
  const h = cmd.health;
  const hc: Record<string, unknown> = { Test: [...h.test] };
  if (h.interval) hc['Interval'] = h.interval;
  if (h.timeout) hc['Timeout'] = h.timeout;
  if (h.startPeriod) hc['StartPeriod'] = h.startPeriod;
  if (h.startInterval) hc['StartInterval'] = h.startInterval;
  if (h.retries) hc['Retries'] = h.retries;
  d.state.config.Healthcheck = hc as { Test: string[] };
  return { kind: 'healthcheck', ...stepBase(cmd, d.onbuild), health: { ...h, test: [...h.test] } };
}

function dispatchOnbuild(d: Dispatch, cmd: CommandOf<'onbuild'>): Step {
  const config = d.state.config;
  config.OnBuild = [...(config.OnBuild ?? []), cmd.expression];
  return { kind: 'onbuild', ...stepBase(cmd, d.onbuild), expression: cmd.expression };
}

function expandSources(ev: Evaluation, contents: SourceContent[], vars: Vars, range: SourceRange): SourceContent[] {
  return contents.map((c) => {
    if (!c.expand) return { ...c };
    try {
      const data = expandWithMatches(c.data, vars.lookup, { skipProcessQuotes: true }).result;
      return { ...c, data };
    } catch (err) {
      return ev.fail((err as Error).message, range, err);
    }
  });
}

/** The earlier stage `COPY --from` names (already checked by collectDependencies), if it names one. */
function copyFromStage(d: Dispatch, from: string, at: SourceRange): number | undefined {
  const ref = stageRef(d.stages, from);
  if (ref !== undefined && ref >= d.index) {
    d.ev.fail(`cannot copy from stage ${goQuote(from)}, it needs to be defined before current stage ${goQuote(stageName(d.stages, d.index))}`, at);
  }
  return ref;
}

function dispatchCopyOrAdd(d: Dispatch, cmd: CommandOf<'copy' | 'add'>): Step {
  const { x } = d;
  const from = cmd.kind === 'copy' ? cmd.from : '';
  const fromStage = from === '' ? undefined : copyFromStage(d, from, cmd.location);
  const chown = x(cmd.chown);
  const chmod = x(cmd.chmod);
  const checksum = cmd.kind === 'add' ? x(cmd.checksum) : '';
  const sources = cmd.sources.map(x);
  const dest = x(cmd.dest);
  const sourceContents = expandSources(d.ev, cmd.sourceContents, d.state.env, cmd.location);
  const workdir = workdirOf(d.state);
  const common = {
    ...stepBase(cmd, d.onbuild, true),
    sources,
    sourceContents,
    dest,
    destPath: destPath(workdir, dest),
    chown,
    chmod,
    link: cmd.link,
    exclude: [...cmd.exclude],
    workdir,
  };
  if (cmd.kind === 'add') {
    const step: Step = { kind: 'add', ...common, checksum };
    if (cmd.keepGitDir !== undefined) step.keepGitDir = cmd.keepGitDir;
    if (cmd.unpack !== undefined) step.unpack = cmd.unpack;
    return step;
  }
  const step: Step = { kind: 'copy', ...common, from, parents: cmd.parents };
  if (fromStage !== undefined) step.fromStage = fromStage;
  return step;
}

function dispatchRun(d: Dispatch, cmd: CommandOf<'run'>): Step {
  const { state } = d;
  const config = state.config;
  const workdir = workdirOf(state);
  const mounts = runMounts(d, cmd, workdir);
  const devices = cmd.deviceSpecs.map((spec) => {
    try {
      return parseDevice(spec);
    } catch (err) {
      return d.ev.fail((err as Error).message, cmd.location, err);
    }
  });
  const { args, inlineScript } = runArgs(d.ev, cmd);
  const argv = cmd.shellForm ? withShell(config, args) : args;
  const step: Step = {
    kind: 'run',
    ...stepBase(cmd, d.onbuild, true),
    shellForm: cmd.shellForm,
    command: [...cmd.command],
    heredocs: cmd.heredocs.map((h) => ({ ...h })),
    argv,
    env: state.env.toArray(),
    proxy: { ...d.proxy },
    user: config.User ?? '',
    workdir,
    mounts,
    network: cmd.network,
    security: cmd.security,
    devices,
  };
  if (inlineScript) step.inlineScript = inlineScript;
  return step;
}

/** RUN's `--mount`s, expanded, with their stages and targets resolved. */
function runMounts(d: Dispatch, cmd: CommandOf<'run'>, workdir: string): ResolvedMount[] {
  const { ev } = d;
  const at = cmd.location;
  const mounts: ResolvedMount[] = [];
  let sshIndex = 0;
  for (const spec of cmd.mountSpecs) {
    let mount: ResolvedMount;
    try {
      mount = { ...parseMount(spec, d.x), resolvedTarget: '' };
    } catch (err) {
      if (err instanceof DockerfileError) throw err;
      return ev.fail((err as Error).message, at, err);
    }
    if (mount.from !== '') {
      const ref = stageByName(d.stages, mount.from);
      if (ref >= 0) {
        if (ref >= d.index) ev.fail(`cannot mount from stage ${goQuote(mount.from)} to ${goQuote(mount.target)}, stage needs to be defined before current command`, at);
        mount.fromStage = ref;
      }
    }
    mounts.push(resolveMount(ev, mount, workdir, mount.type === 'ssh' ? sshIndex++ : 0, at));
  }
  return mounts;
}

function resolveMount(ev: Evaluation, m: ResolvedMount, workdir: string, sshIndex: number, range: SourceRange): ResolvedMount {
  if (m.type === 'secret') {
    let id = m.source !== '' ? m.source : m.cacheId;
    if (id === '') {
      if (m.target === '') ev.fail('one of source, target required', range);
      id = baseName(m.target);
    }
    m.cacheId = id;
    m.resolvedTarget = m.env === undefined ? (m.target !== '' ? m.target : `/run/secrets/${baseName(id)}`) : m.target;
    return m;
  }
  if (m.type === 'ssh') {
    if (m.source !== '') ev.fail('ssh does not support source', range);
    if (m.cacheId === '') m.cacheId = 'default';
    m.resolvedTarget = m.target !== '' ? m.target : `/run/buildkit/ssh_agent.${sshIndex}`;
    return m;
  }
  const target = m.target.startsWith('/') ? m.target : joinPath('/', workdir, m.target);
  if (target === '/' || cleanPath(target) === '/') ev.fail(`invalid mount target ${JSON.stringify(target)}`, range);
  m.resolvedTarget = target;
  if (m.type === 'cache' && m.cacheId === '') m.cacheId = cleanPath(m.target);
  return m;
}

/**
 * RUN's arguments with heredocs folded in as BuildKit does: a lone heredoc is
 * the script itself (written to a file and run when it starts with `#!`),
 * otherwise the heredocs are appended to the command line.
 */
function runArgs(ev: Evaluation, cmd: CommandOf<'run'>): { args: string[]; inlineScript?: { path: string; data: string; mode: number } } {
  const args = [...cmd.command];
  if (cmd.heredocs.length === 0) return { args };
  if (args.length !== 1 || !cmd.shellForm) ev.fail(`parsing produced an invalid run command: ${goQuoteSlice(args).replace(/"/g, '')}`, cmd.location);
  let single;
  try {
    single = parseHeredoc(args[0]!);
  } catch {
    single = undefined;
  }
  if (!single) {
    let joined = args[0]!;
    for (const file of cmd.heredocs) joined += `\n${file.data}${file.name}`;
    return { args: [joined] };
  }
  const file = cmd.heredocs[0]!;
  const data = file.chomp ? chompHeredocContent(file.data) : file.data;
  if (!data.startsWith('#!')) return { args: [data] };
  const path = joinPath('/dev/pipes/', file.name);
  return { args: [path], inlineScript: { path, data, mode: 0o755 } };
}
