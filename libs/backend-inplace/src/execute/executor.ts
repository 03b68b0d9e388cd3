import { chmodSync, lchownSync, mkdirSync, statSync } from 'node:fs';
import type { DockerignoreFile } from '@cnb-extender/dockerfile';
import type { ContainerConfig } from '@cnb-extender/oci';
import { copyIntoRoot, parseChmod } from './copy.ts';
import { expandWord, type Expander } from './expand.ts';
import type { CopyInstruction, Instruction, RunInstruction } from './instructions.ts';
import { cleanImagePath, resolveInRoot } from './paths.ts';
import { RunError, runProcess, type RunSpec } from './run.ts';
import { resolveOwner, resolveUser } from './user.ts';

/** Docker's PATH when the image has none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** The state a Dockerfile is evaluated in: the image config so far, and the ARGs in effect. */
export interface BuildState {
  config: ContainerConfig;
  /** Top-level `author` (MAINTAINER). */
  author?: string;
  /** Build args given from outside (`--build-arg`). */
  buildArgs: ReadonlyMap<string, string>;
  /** ARGs declared so far that have a value. */
  args: Map<string, string>;
  /** Whether this Dockerfile set CMD (ENTRYPOINT resets an inherited CMD only). */
  cmdSet: boolean;
}

export function createBuildState(config: ContainerConfig, buildArgs: Iterable<{ name: string; value: string }> = []): BuildState {
  return {
    config: structuredClone(config),
    buildArgs: new Map([...buildArgs].map((a) => [a.name, a.value])),
    args: new Map(),
    cmdSet: false,
  };
}

export interface ExecuteOptions {
  /** Root filesystem the instructions change (`/` in production). */
  root: string;
  /** Build context for COPY/ADD. */
  contextDir: string;
  /** The build's ignore file (`readDockerignore`); COPY/ADD do not see what it excludes. */
  ignore?: DockerignoreFile;
  /** RUN gets the network (default false). `RUN --network=none` always runs without. */
  network?: boolean;
  /** ADD may fetch URLs (default false). */
  allowRemote?: boolean;
  expand?: Expander;
  signal?: AbortSignal;
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

/** What one instruction did. */
export interface StepResult {
  /** The instruction as written: the history line of its layer. */
  createdBy: string;
  /** True when the root filesystem may have changed (a snapshot is due). */
  changesFilesystem: boolean;
  /**
   * Image paths the instruction wrote, when known (COPY/ADD/WORKDIR); null
   * when anything may have changed (RUN): then a full walk decides.
   */
  touched: string[] | null;
}

/** An instruction failed; `instruction` is the line as written. */
export class InstructionError extends Error {
  override name = 'InstructionError';
  readonly instruction: string;
  readonly exitCode: number | undefined;
  constructor(instruction: string, message: string, options: { cause?: unknown; exitCode?: number } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.instruction = instruction;
    this.exitCode = options.exitCode;
  }
}

function envMap(list: readonly string[] | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const kv of list ?? []) {
    const i = kv.indexOf('=');
    if (i === -1) m.set(kv, '');
    else m.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return m;
}

/** ARGs then ENV (ENV wins): what `$name` means at this point of the Dockerfile. */
export function expansionEnv(state: BuildState): Map<string, string> {
  const m = new Map(state.args);
  for (const [k, v] of envMap(state.config.Env)) m.set(k, v);
  return m;
}

function setEnv(config: ContainerConfig, name: string, value: string): void {
  const env = config.Env ? [...config.Env] : [];
  const i = env.findIndex((kv) => kv === name || kv.startsWith(`${name}=`));
  if (i === -1) env.push(`${name}=${value}`);
  else env[i] = `${name}=${value}`;
  config.Env = env;
}

function shellWords(state: BuildState, form: 'shell' | 'exec', command: string | string[]): string[] {
  if (form === 'exec') return Array.isArray(command) ? [...command] : [command];
  const shell = state.config.Shell && state.config.Shell.length > 0 ? state.config.Shell : ['/bin/sh', '-c'];
  return [...shell, Array.isArray(command) ? command.join(' ') : command];
}

/**
 * Applies one instruction to `state` (config) and, for RUN, COPY, ADD and
 * WORKDIR, to the root filesystem. Words are expanded here with the ARG/ENV
 * state in effect, as the Docker builder does.
 */
export async function executeInstruction(state: BuildState, ins: Instruction, options: ExecuteOptions): Promise<StepResult> {
  options.signal?.throwIfAborted();
  const expand = (word: string): string => (options.expand ?? expandWord)(word, expansionEnv(state));
  const config = state.config;
  const none: StepResult = { createdBy: ins.original, changesFilesystem: false, touched: [] };
  try {
    switch (ins.kind) {
      case 'ENV':
        for (const [k, v] of ins.pairs) setEnv(config, expand(k), expand(v));
        return none;
      case 'ARG':
        for (const arg of ins.args) {
          const given = state.buildArgs.get(arg.name);
          const value = given ?? (arg.default === undefined ? undefined : expand(arg.default));
          if (value === undefined) state.args.delete(arg.name);
          else state.args.set(arg.name, value);
        }
        return none;
      case 'LABEL':
        config.Labels = { ...config.Labels };
        for (const [k, v] of ins.pairs) config.Labels[expand(k)] = expand(v);
        return none;
      case 'USER':
        config.User = expand(ins.user);
        return none;
      case 'SHELL':
        config.Shell = [...ins.shell];
        return none;
      case 'CMD':
        config.Cmd = shellWords(state, ins.form, ins.command);
        state.cmdSet = true;
        return none;
      case 'ENTRYPOINT':
        config.Entrypoint = shellWords(state, ins.form, ins.command);
        if (!state.cmdSet) config.Cmd = null;
        return none;
      case 'EXPOSE':
        config.ExposedPorts = { ...config.ExposedPorts };
        for (const p of ins.ports.map(expand)) config.ExposedPorts[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
        return none;
      case 'VOLUME':
        config.Volumes = { ...config.Volumes };
        for (const p of ins.paths.map(expand)) config.Volumes[p] = {};
        return none;
      case 'STOPSIGNAL':
        config.StopSignal = expand(ins.signal);
        return none;
      case 'MAINTAINER':
        state.author = ins.name;
        return none;
      case 'ONBUILD':
        config.OnBuild = [...(config.OnBuild ?? []), ins.expression];
        return none;
      case 'HEALTHCHECK': {
        if (ins.test === null || ins.test[0] === 'NONE') {
          config.Healthcheck = { Test: ['NONE'] };
          return none;
        }
        const hc: Record<string, unknown> = { Test: ins.test };
        for (const [key, value] of [['Interval', ins.interval], ['Timeout', ins.timeout], ['StartPeriod', ins.startPeriod]] as const) {
          if (value !== undefined) hc[key] = value;
        }
        if (ins.retries !== undefined) hc['Retries'] = ins.retries;
        config.Healthcheck = hc;
        return none;
      }
      case 'WORKDIR': {
        const path = cleanImagePath(expand(ins.path), config.WorkingDir || '/');
        config.WorkingDir = path;
        const created = ensureDir(options.root, path, () => {
          const u = resolveUser(options.root, config.User ?? '');
          return { uid: u.uid, gid: u.gid };
        });
        return { createdBy: ins.original, changesFilesystem: created.length > 0, touched: created };
      }
      case 'RUN':
        await run(state, ins, options);
        return { createdBy: ins.original, changesFilesystem: true, touched: null };
      case 'COPY':
      case 'ADD': {
        const touched = await copy(state, ins, options, expand);
        return { createdBy: ins.original, changesFilesystem: true, touched };
      }
    }
  } catch (error) {
    if (error instanceof InstructionError) throw error;
    if (options.signal?.aborted && error === options.signal.reason) throw error;
    const e = error as Error & { exitCode?: number };
    throw new InstructionError(ins.original, `${ins.original}: ${e.message}`, { cause: error, ...(e.exitCode === undefined ? {} : { exitCode: e.exitCode }) });
  }
}

/** Creates image directory `path` and missing parents (0755); returns the image paths created. */
export function ensureDir(root: string, path: string, owner: () => { uid: number; gid: number }): string[] {
  const created: string[] = [];
  let image = '';
  for (const part of path.split('/').filter((p) => p !== '')) {
    image = `${image}/${part}`;
    const host = resolveInRoot(root, image);
    try {
      if (!statSync(host).isDirectory()) throw new Error(`${image} exists and is not a directory`);
      continue;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
    const o = owner();
    mkdirSync(host);
    lchownSync(host, o.uid, o.gid);
    // 0755 as Docker creates it, not what the extender's umask leaves of it
    chmodSync(host, 0o755);
    created.push(image);
  }
  return created;
}

/** The environment of a RUN: image Env, ARGs not shadowed by it, PATH and HOME defaults. */
export function runEnv(state: BuildState, home: string): string[] {
  const env = envMap(state.config.Env);
  for (const [k, v] of state.args) if (!env.has(k)) env.set(k, v);
  if (!env.has('PATH')) env.set('PATH', DEFAULT_PATH);
  if (!env.has('HOME')) env.set('HOME', home);
  return [...env].map(([k, v]) => `${k}=${v}`);
}

const STDERR_TAIL = 1024;

async function run(state: BuildState, ins: RunInstruction, options: ExecuteOptions): Promise<void> {
  const user = resolveUser(options.root, state.config.User ?? '');
  const cwd = state.config.WorkingDir || '/';
  await runArgv({
    root: options.root,
    argv: shellWords(state, ins.form, ins.command),
    env: runEnv(state, user.home),
    user,
    cwd,
    network: (options.network ?? false) && ins.network !== 'none',
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
  });
}

/**
 * Runs a RUN's process (creating its working directory when missing) and
 * fails with the argv, user, directory, exit code and the end of stderr.
 */
export async function runArgv(spec: RunSpec): Promise<void> {
  ensureDir(spec.root, spec.cwd, () => ({ uid: 0, gid: 0 }));
  let stderrTail = '';
  const result = await runProcess({
    ...spec,
    onOutput: (stream, chunk) => {
      if (stream === 'stderr') stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL);
      spec.onOutput?.(stream, chunk);
    },
  });
  if (result.exitCode !== 0) {
    const said = stderrTail.trim() === '' ? '' : ` (stderr ends: ${JSON.stringify(stderrTail.trim().split('\n').slice(-3).join('\n'))})`;
    throw new RunError(`running ${JSON.stringify(spec.argv)} as ${spec.user.uid}:${spec.user.gid} in ${spec.cwd}: exit code ${result.exitCode}${said}`, result.exitCode);
  }
}

async function copy(state: BuildState, ins: CopyInstruction, options: ExecuteOptions, expand: (w: string) => string): Promise<string[]> {
  if (ins.from !== undefined) throw new Error(`--from=${ins.from} is not available: an extension's Dockerfile has one stage and no other images`);
  const owner = ins.chown === undefined ? undefined : resolveOwner(options.root, expand(ins.chown));
  return copyIntoRoot({
    root: options.root,
    contextDir: options.contextDir,
    ...(options.ignore ? { ignore: options.ignore } : {}),
    sources: ins.sources.map(expand),
    dest: expand(ins.dest),
    cwd: state.config.WorkingDir || '/',
    ...(owner ? { owner } : {}),
    ...(ins.chmod === undefined ? {} : { mode: parseChmod(expand(ins.chmod)) }),
    add: ins.kind === 'ADD',
    allowRemote: options.allowRemote ?? false,
    ...(options.signal ? { signal: options.signal } : {}),
  });
}
