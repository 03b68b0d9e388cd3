/**
 * Evaluation: typed instructions + build args + base image config → the plan
 * a backend executes. Follows BuildKit's `dockerfile2llb` dispatch: global
 * (meta) ARGs are visible only in FROM unless re-declared, `--build-arg` values
 * override defaults, ENV and ARG values are visible to later instructions in
 * the order they are set (an ENV after an ARG shadows it, and vice versa), and
 * each instruction's arguments are expanded before it runs.
 */
import { hostPlatform } from '@cnb-extender/oci';
import { DockerfileError, type SourceRange } from '../errors.ts';
import { goLower, goQuote, goQuoteSlice } from '../go.ts';
import { chompHeredocContent, parseHeredoc } from '../heredoc.ts';
import { parseInstruction, parseInstructions } from '../instructions/parse.ts';
import { parseDevice, parseMount } from '../instructions/mount.ts';
import type { ArgCommand, Command, Instructions, SourceContent, Stage } from '../instructions/types.ts';
import { parse, type ParseResult } from '../parser.ts';
import { expandWithMatches, type EnvSource } from '../shell/lex.ts';
import {
  addEnv,
  cloneConfig,
  cleanPath,
  DEFAULT_PATH_ENV,
  DEFAULT_SHELL,
  destPath,
  joinPath,
  normalizeWorkdir,
  parsePorts,
  parseSignal,
  splitEnv,
  type ImageConfig,
} from './config.ts';
import type { Plan, Platform, ProxyEnv, ResolvedMount, Step, StageBase, StagePlan } from './types.ts';

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

/** Args BuildKit defines itself; they never count as unused. */
const BUILTIN_ARGS = [
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDOSVERSION',
  'BUILDARCH',
  'BUILDVARIANT',
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETOSVERSION',
  'TARGETARCH',
  'TARGETVARIANT',
  'TARGETSTAGE',
];
const PROXY_ARGS = ['http_proxy', 'https_proxy', 'ftp_proxy', 'no_proxy', 'all_proxy'];
/** Args BuildKit never puts into the environment. */
const NON_ENV_ARGS = new Set(['BUILDKIT_SBOM_SCAN_CONTEXT', 'BUILDKIT_SBOM_SCAN_STAGE']);

/** libs/oci's host platform, without a variant. */
function defaultTargetPlatform(): Platform {
  const { os, architecture } = hostPlatform();
  return { os, architecture };
}

function formatPlatform(p: Platform): string {
  return p.variant ? `${p.os}/${p.architecture}/${p.variant}` : `${p.os}/${p.architecture}`;
}

/** An ordered variable list with "last set wins" lookup (BuildKit's EnvList). */
class Vars {
  readonly #map: Map<string, string>;
  #array: readonly string[] | undefined;

  constructor(from?: Vars) {
    this.#map = from ? new Map(from.#map) : new Map();
  }

  set(key: string, value: string): void {
    this.#map.set(key, value);
    this.#array = undefined;
  }

  get(key: string): string | undefined {
    return this.#map.get(key);
  }

  has(key: string): boolean {
    return this.#map.has(key);
  }

  get lookup(): EnvSource {
    return (name: string) => this.#map.get(name);
  }

  /** `KEY=VALUE` entries; the same frozen array until the next `set`. */
  toArray(): readonly string[] {
    this.#array ??= Object.freeze([...this.#map].map(([k, v]) => `${k}=${v}`));
    return this.#array;
  }
}

interface StageState {
  config: ImageConfig;
  env: Vars;
  /** ARGs declared in this stage (and inherited from the base stage). */
  args: { key: string; value?: string }[];
  cmdSet: boolean;
  author?: string;
}

class Evaluation {
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

function defaultArgs(options: EvaluateOptions, buildArgs: Map<string, string>, target: string): Vars {
  const tp = options.platform ?? defaultTargetPlatform();
  const bp = options.buildPlatform ?? tp;
  const vars = new Vars();
  const defaults: [string, string][] = [
    ['BUILDPLATFORM', formatPlatform(bp)],
    ['BUILDOS', bp.os],
    ['BUILDOSVERSION', ''],
    ['BUILDARCH', bp.architecture],
    ['BUILDVARIANT', bp.variant ?? ''],
    ['TARGETPLATFORM', formatPlatform(tp)],
    ['TARGETOS', tp.os],
    ['TARGETOSVERSION', ''],
    ['TARGETARCH', tp.architecture],
    ['TARGETVARIANT', tp.variant ?? ''],
    ['TARGETSTAGE', target === '' ? 'default' : target],
  ];
  for (const [k, v] of defaults) vars.set(k, buildArgs.get(k) ?? v);
  return vars;
}

function proxyEnv(buildArgs: Map<string, string>): ProxyEnv {
  const proxy: ProxyEnv = {};
  for (const key of [...buildArgs.keys()].sort()) {
    const value = buildArgs.get(key)!;
    switch (key.toLowerCase()) {
      case 'http_proxy':
        proxy.httpProxy = value;
        break;
      case 'https_proxy':
        proxy.httpsProxy = value;
        break;
      case 'ftp_proxy':
        proxy.ftpProxy = value;
        break;
      case 'no_proxy':
        proxy.noProxy = value;
        break;
      case 'all_proxy':
        proxy.allProxy = value;
        break;
    }
  }
  return proxy;
}

function withShell(config: ImageConfig, args: readonly string[]): string[] {
  const shell = config.Shell && config.Shell.length > 0 ? config.Shell : DEFAULT_SHELL;
  return [...shell, args.join(' ')];
}

function stepBase(cmd: Command, onbuild: boolean, changesFilesystem = false) {
  return { instruction: cmd, location: cmd.location, original: cmd.original, onbuild, changesFilesystem };
}

/** The lifecycle/BuildKit rule for the global ARGs (`buildMetaArgs`). */
function buildMetaArgs(ev: Evaluation, metaArgs: ArgCommand[]): { key: string; value?: string }[] {
  const out: { key: string; value?: string }[] = [];
  for (const cmd of metaArgs) {
    for (const def of cmd.args) {
      ev.usedArgs.add(def.key);
      let value: string | undefined;
      if (ev.buildArgs.has(def.key)) value = ev.buildArgs.get(def.key);
      else if (def.value !== undefined) value = ev.expand(def.value, ev.global, cmd.location);
      if (value !== undefined) ev.global.set(def.key, value);
      out.push(value === undefined ? { key: def.key } : { key: def.key, value });
    }
  }
  return out;
}

/** Go's `path.Base`. */
function baseName(p: string): string {
  if (p === '') return '.';
  const trimmed = p.replace(/\/+$/, '');
  if (trimmed === '') return '/';
  return trimmed.slice(trimmed.lastIndexOf('/') + 1);
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

interface StageInfo {
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

function cloneState(state: StageState): StageState {
  const config = cloneConfig(state.config);
  config.OnBuild = null;
  const clone: StageState = { config, env: new Vars(state.env), args: [...state.args], cmdSet: false };
  if (state.author !== undefined) clone.author = state.author;
  return clone;
}

function evaluateStage(ev: Evaluation, index: number, infos: StageInfo[], proxy: ProxyEnv): StagePlan {
  const info = infos[index]!;
  const { stage } = info;
  const platform = stage.platform === '' ? '' : ev.expand(stage.platform, ev.global, stage.location);

  let base: StageBase;
  let state: StageState;
  let triggers: string[];
  if (info.baseStage >= 0) {
    const parent = infos[info.baseStage]!;
    base = { kind: 'stage', index: info.baseStage, name: parent.stage.name };
    state = cloneState(parent.state!);
    triggers = parent.plan!.steps.filter((s) => s.kind === 'onbuild' && !s.onbuild).map((s) => (s as { expression: string }).expression);
  } else {
    base = info.baseName === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref: info.baseName };
    const config = base.kind === 'scratch' ? {} : cloneConfig(ev.baseConfigFor(info.baseName));
    state = { config, env: new Vars(), args: [], cmdSet: false };
    triggers = [...(config.OnBuild ?? [])];
    if (triggers.length > 0) config.OnBuild = null;
    // PATH is always set (BuildKit, Linux).
    const env = config.Env ?? [];
    if (!env.some((e) => splitEnv(e)[0] === 'PATH')) config.Env = [...env, `PATH=${DEFAULT_PATH_ENV}`];
    for (const entry of config.Env ?? []) {
      const [k, v] = splitEnv(entry);
      state.env.set(k, v);
    }
  }

  const plan: StagePlan = { index, name: stage.name, base, platform, reachable: true, stage, steps: [], config: state.config };
  const commands: { cmd: Command; onbuild: boolean }[] = [];
  for (const trigger of triggers) {
    let cmd: Command;
    try {
      const parsed = parse(trigger, { file: ev.file });
      if (parsed.ast.children.length !== 1) throw new Error('onbuild trigger should be a single expression');
      const typed = parseInstruction(parsed.ast.children[0]!, ev.file);
      if (!('kind' in typed)) throw new Error('Stage is not a command type');
      cmd = { ...typed, location: stage.location } as Command;
    } catch (err) {
      return ev.fail(err instanceof DockerfileError ? err.reason : (err as Error).message, stage.location, err);
    }
    commands.push({ cmd, onbuild: true });
  }
  for (const cmd of stage.commands) commands.push({ cmd, onbuild: false });

  for (const { cmd, onbuild } of commands) plan.steps.push(dispatch(ev, cmd, onbuild, state, infos, index, proxy));
  plan.config = state.config;
  if (state.author !== undefined) plan.author = state.author;
  info.state = state;
  return plan;
}

function workdirOf(state: StageState): string {
  return state.config.WorkingDir || '/';
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

function dispatch(ev: Evaluation, cmd: Command, onbuild: boolean, state: StageState, stages: StageInfo[], index: number, proxy: ProxyEnv): Step {
  const vars = state.env;
  const at = cmd.location;
  const x = (word: string): string => ev.expand(word, vars, at);
  const config = state.config;
  switch (cmd.kind) {
    case 'env': {
      const pairs = cmd.pairs.map((p) => ({ key: x(p.key), value: x(p.value) }));
      for (const p of pairs) {
        vars.set(p.key, p.value);
        config.Env = addEnv(config.Env, p.key, p.value);
      }
      return { kind: 'env', ...stepBase(cmd, onbuild), pairs };
    }
    case 'label': {
      const pairs = cmd.pairs.map((p) => ({ key: x(p.key), value: x(p.value) }));
      config.Labels = { ...config.Labels };
      for (const p of pairs) config.Labels[p.key] = p.value;
      return { kind: 'label', ...stepBase(cmd, onbuild), pairs };
    }
    case 'maintainer':
      state.author = cmd.maintainer;
      return { kind: 'maintainer', ...stepBase(cmd, onbuild), maintainer: cmd.maintainer };
    case 'arg': {
      const args: { key: string; value?: string }[] = [];
      for (const def of cmd.args) {
        ev.usedArgs.add(def.key);
        let value: string | undefined;
        if (ev.buildArgs.has(def.key)) value = ev.buildArgs.get(def.key);
        else if (def.value !== undefined) value = x(def.value);
        else value = ev.global.get(def.key);
        if (value !== undefined && !NON_ENV_ARGS.has(def.key)) vars.set(def.key, value);
        const resolved = value === undefined ? { key: def.key } : { key: def.key, value };
        args.push(resolved);
        state.args.push(resolved);
      }
      return { kind: 'arg', ...stepBase(cmd, onbuild), args };
    }
    case 'user': {
      const user = x(cmd.user);
      config.User = user;
      return { kind: 'user', ...stepBase(cmd, onbuild), user };
    }
    case 'workdir': {
      const path = x(cmd.path);
      const workdir = normalizeWorkdir(config.WorkingDir ?? '', path);
      config.WorkingDir = workdir;
      return { kind: 'workdir', ...stepBase(cmd, onbuild, workdir !== '/'), path, workdir, user: config.User ?? '' };
    }
    case 'volume': {
      const volumes = cmd.volumes.map(x);
      config.Volumes = { ...config.Volumes };
      for (const v of volumes) {
        if (v === '') ev.fail('VOLUME specified can not be an empty string', at);
        config.Volumes[v] = {};
      }
      return { kind: 'volume', ...stepBase(cmd, onbuild), volumes };
    }
    case 'stopsignal': {
      const signal = x(cmd.signal);
      try {
        parseSignal(signal);
      } catch (err) {
        ev.fail((err as Error).message, at, err);
      }
      config.StopSignal = signal;
      return { kind: 'stopsignal', ...stepBase(cmd, onbuild), signal };
    }
    case 'expose': {
      const specs: string[] = [];
      for (const p of cmd.ports) {
        try {
          specs.push(...expandWithMatches(p, vars.lookup, { escapeToken: ev.escapeToken }).words);
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
      config.ExposedPorts = { ...config.ExposedPorts };
      for (const p of ports) config.ExposedPorts[p] = {};
      return { kind: 'expose', ...stepBase(cmd, onbuild), ports };
    }
    case 'shell':
      config.Shell = [...cmd.shell];
      return { kind: 'shell', ...stepBase(cmd, onbuild), shell: [...cmd.shell] };
    case 'cmd': {
      const value = cmd.shellForm ? withShell(config, cmd.command) : [...cmd.command];
      config.Cmd = value;
      config.ArgsEscaped = true;
      state.cmdSet = true;
      return { kind: 'cmd', ...stepBase(cmd, onbuild), shellForm: cmd.shellForm, command: cmd.command, value };
    }
    case 'entrypoint': {
      const value = cmd.shellForm ? withShell(config, cmd.command) : cmd.command.length === 0 ? null : [...cmd.command];
      config.Entrypoint = value;
      if (!state.cmdSet) config.Cmd = null;
      return { kind: 'entrypoint', ...stepBase(cmd, onbuild), shellForm: cmd.shellForm, command: cmd.command, value };
    }
    case 'healthcheck': {
      const h = cmd.health;
      const hc: Record<string, unknown> = { Test: [...h.test] };
      if (h.interval) hc['Interval'] = h.interval;
      if (h.timeout) hc['Timeout'] = h.timeout;
      if (h.startPeriod) hc['StartPeriod'] = h.startPeriod;
      if (h.startInterval) hc['StartInterval'] = h.startInterval;
      if (h.retries) hc['Retries'] = h.retries;
      config.Healthcheck = hc as { Test: string[] };
      return { kind: 'healthcheck', ...stepBase(cmd, onbuild), health: { ...h, test: [...h.test] } };
    }
    case 'onbuild':
      config.OnBuild = [...(config.OnBuild ?? []), cmd.expression];
      return { kind: 'onbuild', ...stepBase(cmd, onbuild), expression: cmd.expression };
    case 'run':
      return dispatchRun(ev, cmd, onbuild, state, proxy, x, stages, index);
    case 'copy':
    case 'add': {
      let from = '';
      let fromStage: number | undefined;
      if (cmd.kind === 'copy' && cmd.from !== '') {
        // Checked and resolved by collectDependencies; a stage must be dispatched before it is used.
        from = cmd.from;
        const ref = stageRef(stages, from);
        if (ref !== undefined) {
          if (ref >= index) {
            ev.fail(`cannot copy from stage ${goQuote(from)}, it needs to be defined before current stage ${goQuote(stageName(stages, index))}`, at);
          }
          fromStage = ref;
        }
      }
      const chown = x(cmd.chown);
      const chmod = x(cmd.chmod);
      const checksum = cmd.kind === 'add' ? x(cmd.checksum) : '';
      const sources = cmd.sources.map(x);
      const dest = x(cmd.dest);
      const sourceContents = expandSources(ev, cmd.sourceContents, vars, at);
      const workdir = workdirOf(state);
      const common = {
        ...stepBase(cmd, onbuild, true),
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
  }
}

function dispatchRun(
  ev: Evaluation,
  cmd: Extract<Command, { kind: 'run' }>,
  onbuild: boolean,
  state: StageState,
  proxy: ProxyEnv,
  x: (w: string) => string,
  infos: StageInfo[],
  index: number,
): Step {
  const at = cmd.location;
  const config = state.config;
  const workdir = workdirOf(state);
  const mounts: ResolvedMount[] = [];
  let sshIndex = 0;
  for (const spec of cmd.mountSpecs) {
    let mount: ResolvedMount;
    try {
      mount = { ...parseMount(spec, x), resolvedTarget: '' };
    } catch (err) {
      if (err instanceof DockerfileError) throw err;
      return ev.fail((err as Error).message, at, err);
    }
    if (mount.from !== '') {
      const ref = stageByName(infos, mount.from);
      if (ref >= 0) {
        if (ref >= index) ev.fail(`cannot mount from stage ${goQuote(mount.from)} to ${goQuote(mount.target)}, stage needs to be defined before current command`, at);
        mount.fromStage = ref;
      }
    }
    mounts.push(resolveMount(ev, mount, workdir, mount.type === 'ssh' ? sshIndex++ : 0, at));
  }
  const devices = cmd.deviceSpecs.map((spec) => {
    try {
      return parseDevice(spec);
    } catch (err) {
      return ev.fail((err as Error).message, at, err);
    }
  });

  let args = [...cmd.command];
  let inlineScript: { path: string; data: string; mode: number } | undefined;
  if (cmd.heredocs.length > 0) {
    if (args.length !== 1 || !cmd.shellForm) ev.fail(`parsing produced an invalid run command: ${goQuoteSlice(args).replace(/"/g, '')}`, at);
    let single;
    try {
      single = parseHeredoc(args[0]!);
    } catch {
      single = undefined;
    }
    if (single) {
      const file = cmd.heredocs[0]!;
      const data = file.chomp ? chompHeredocContent(file.data) : file.data;
      if (data.startsWith('#!')) {
        const path = joinPath('/dev/pipes/', file.name);
        inlineScript = { path, data, mode: 0o755 };
        args = [path];
      } else {
        args = [data];
      }
    } else {
      let joined = args[0]!;
      for (const file of cmd.heredocs) joined += `\n${file.data}${file.name}`;
      args = [joined];
    }
  }
  const argv = cmd.shellForm ? withShell(config, args) : args;
  const step: Step = {
    kind: 'run',
    ...stepBase(cmd, onbuild, true),
    shellForm: cmd.shellForm,
    command: [...cmd.command],
    heredocs: cmd.heredocs.map((h) => ({ ...h })),
    argv,
    env: state.env.toArray(),
    proxy: { ...proxy },
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

/**
 * The stage a `--from`/`from=` name refers to: BuildKit keeps one entry per
 * lower-cased name, the last stage of that name winning. -1 when none.
 */
function stageByName(infos: StageInfo[], from: string): number {
  const lower = goLower(from);
  for (let i = infos.length - 1; i >= 0; i--) if (infos[i]!.stage.name !== '' && infos[i]!.stage.name === lower) return i;
  return -1;
}

/** BuildKit's name for a stage in messages (`stage-N` when unnamed, empty for a single stage). */
function stageName(infos: StageInfo[], index: number): string {
  if (infos.length === 1) return '';
  return infos[index]!.stage.name || `stage-${index}`;
}

/** Stage index a `--from`/`from=` value names (by index or name), if any. */
function stageRef(infos: StageInfo[], from: string): number | undefined {
  if (/^[+-]?[0-9]+$/.test(from)) {
    const n = Number(from);
    return n >= 0 && n < infos.length ? n : undefined;
  }
  const i = stageByName(infos, from);
  return i >= 0 ? i : undefined;
}

/**
 * BuildKit's `buildStageDependencyGraph` for every stage: `COPY --from` must
 * not use variables and a numeric value must be a stage index; `COPY --from`
 * and `RUN --mount=from=` that name a stage make it a dependency.
 */
function collectDependencies(ev: Evaluation, infos: StageInfo[]): void {
  for (const info of infos) {
    for (const cmd of info.stage.commands) {
      if (cmd.kind === 'copy' && cmd.from !== '') {
        let checked: string;
        try {
          checked = expandWithMatches(cmd.from, () => undefined, { escapeToken: ev.escapeToken }).result;
        } catch (err) {
          ev.fail((err as Error).message, cmd.location, err);
        }
        if (checked !== cmd.from) {
          ev.fail('variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround', cmd.location);
        }
        let ref: number;
        if (/^[+-]?[0-9]+$/.test(cmd.from)) {
          ref = Number(cmd.from);
          if (ref < 0 || ref >= infos.length) ev.fail(`invalid stage index ${ref}`, cmd.location);
        } else {
          ref = stageByName(infos, cmd.from);
        }
        if (ref >= 0) info.deps.push({ stage: ref, cmd });
      }
      if (cmd.kind === 'run') {
        for (const spec of cmd.mountSpecs) {
          const from = parseMount(spec).from;
          const ref = from === '' ? -1 : stageByName(infos, from);
          if (ref >= 0) info.deps.push({ stage: ref, cmd });
        }
      }
    }
  }
}

/** BuildKit's `validateCircularDependency`, reporting the stage whose walk finds the cycle. */
function checkCircularDependencies(ev: Evaluation, infos: StageInfo[]): void {
  const visited = new Set<number>();
  const onPath = new Set<number>();
  const visit = (i: number, path: Command[]): Command[] | undefined => {
    if (visited.has(i)) return undefined;
    visited.add(i);
    onPath.add(i);
    for (const dep of infos[i]!.deps) {
      const next = [...path, dep.cmd];
      if (onPath.has(dep.stage)) return next;
      const found = visit(dep.stage, next);
      if (found) return found;
    }
    onPath.delete(i);
    return undefined;
  };
  for (let i = 0; i < infos.length; i++) {
    const cycle = visit(i, []);
    if (cycle) ev.fail(`circular dependency detected on stage: ${infos[i]!.stage.name || `stage-${i}`}`, cycle[0]!.location);
  }
}

/** Mark the stages the target needs (its base chain and the stages its commands use). */
function markReachable(infos: StageInfo[], target: number): void {
  const visit = (i: number): void => {
    const info = infos[i]!;
    if (info.reachable) return;
    info.reachable = true;
    if (info.baseStage >= 0) visit(info.baseStage);
    for (const dep of info.deps) visit(dep.stage);
  };
  visit(target);
}

/**
 * Evaluate a Dockerfile for the given build args and base config. Accepts the
 * text, a parse result or already-parsed instructions (with the parse result
 * for the escape token). Throws DockerfileError.
 */
export function evaluate(input: string | Uint8Array | ParseResult, options: EvaluateOptions = {}): Plan {
  const parsed = typeof input === 'string' || input instanceof Uint8Array ? parse(input, options.file === undefined ? {} : { file: options.file }) : input;
  const file = options.file ?? parsed.file;
  const instructions: Instructions = parseInstructions(parsed, { file });
  return evaluateInstructions(instructions, { ...options, file }, parsed.escapeToken);
}

/** Evaluate already-parsed instructions (see `evaluate`). */
export function evaluateInstructions(instructions: Instructions, options: EvaluateOptions = {}, escapeToken: '\\' | '`' = '\\'): Plan {
  const file = options.file ?? 'Dockerfile';
  const { stages, metaArgs } = instructions;
  if (stages.length === 0) {
    const range = metaArgs[0]?.location ?? { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } };
    throw new DockerfileError('dockerfile contains no stages to build', { kind: 'evaluation', file, range });
  }
  // The order of BuildKit's Dockerfile2LLB: global args, base names, stage
  // dependencies and cycles, target, then dispatch of the stages it needs.
  const targetName = options.target !== undefined && options.target !== '' ? options.target : stages[stages.length - 1]!.name;
  const givenArgs = options.buildArgs instanceof Map ? options.buildArgs : new Map(Object.entries((options.buildArgs ?? {}) as Record<string, string>));
  const global = defaultArgs(options, givenArgs as Map<string, string>, targetName);
  const ev = new Evaluation(file, escapeToken, options, global);
  const globalArgs = buildMetaArgs(ev, metaArgs);
  const proxy = proxyEnv(ev.buildArgs);
  const infos: StageInfo[] = [];
  for (const stage of stages) {
    let name: string;
    try {
      name = expandWithMatches(stage.baseName, ev.global.lookup, { escapeToken }).result;
    } catch (err) {
      return ev.fail((err as Error).message, stage.location, err);
    }
    if (name === '') ev.fail(`base name (${stage.baseName}) should not be blank`, stage.location);
    // FROM looks the (expanded) name up as is among earlier stages' lower-cased names; the last one wins.
    let baseStage = -1;
    for (let i = infos.length - 1; i >= 0; i--) {
      if (infos[i]!.stage.name !== '' && infos[i]!.stage.name === name) {
        baseStage = i;
        break;
      }
    }
    infos.push({ stage, baseName: name, baseStage, reachable: false, deps: [] });
  }
  collectDependencies(ev, infos);
  checkCircularDependencies(ev, infos);

  let target = stages.length - 1;
  if (options.target !== undefined && options.target !== '') {
    const wanted = goLower(options.target);
    target = stages.findLastIndex((s) => s.name === wanted);
    if (target < 0) ev.fail(`target stage ${goQuote(options.target)} could not be found`, stages[0]!.location);
  }
  markReachable(infos, target);
  const plans: StagePlan[] = infos.map((info, i) => {
    if (!info.reachable) {
      const base: StageBase =
        info.baseStage >= 0 ? { kind: 'stage', index: info.baseStage, name: infos[info.baseStage]!.stage.name } : info.baseName === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref: info.baseName };
      return { index: i, name: info.stage.name, base, platform: '', reachable: false, stage: info.stage, steps: [], config: {} };
    }
    const plan = evaluateStage(ev, i, infos, proxy);
    info.plan = plan;
    return plan;
  });
  const unusedBuildArgs = [...ev.buildArgs.keys()]
    .filter((k) => !ev.usedArgs.has(k) && !BUILTIN_ARGS.includes(k) && !PROXY_ARGS.includes(k.toLowerCase()))
    .sort();
  return { file, globalArgs, stages: plans, target, unusedBuildArgs };
}
