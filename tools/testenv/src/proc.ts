/**
 * Processes: one-shot commands with captured output, long-running daemons with
 * their output in a log file, and the checks around them (alive, listening,
 * stopped).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, readdirSync, readlinkSync, existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';

/** A new error whose message reads as a chain of actions: `<what>: <the cause's message>`. */
export function chainError(what: string, cause: unknown): Error {
  const reason = cause instanceof Error ? cause.message : String(cause);
  return new Error(`${what}: ${reason}`, { cause });
}

export class CommandError extends Error {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  constructor(message: string, code: number | null, stdout: string, stderr: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CommandError';
    this.code = code;
    this.stdout = stdout;
    this.stderr = stderr;
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  input?: string | Buffer;
  /** How the command is named in errors (use it when argv holds a secret). */
  display?: string;
  /** Write stdout to this file descriptor instead of capturing it. */
  stdoutFd?: number;
  /** Give up (SIGKILL) after this many milliseconds. */
  timeoutMs?: number;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Why a process could not be started, from a spawn 'error': a command that is
 * not there, not executable, or behind a directory closed to this user (a
 * checkout under a 0700 home run as another user), or a working directory that
 * does not exist (which Node also reports as ENOENT).
 */
export function spawnFailure(cmd: string, error: NodeJS.ErrnoException, cwd?: string): string {
  if (error.code === 'ENOENT' && cwd !== undefined && !existsSync(cwd)) return `the working directory ${cwd} does not exist`;
  if (error.code === 'ENOENT') return cmd.includes('/') ? `${cmd} does not exist` : `${cmd} is not installed (not found in PATH)`;
  if (error.code === 'EACCES') return `${cmd} cannot be executed by uid ${process.getuid?.() ?? '?'} (permission denied: not executable, or a directory on its path is closed to this user)`;
  return error.message;
}

/**
 * How a spawned child ended: its exit code and signal once it has closed, or a
 * rejection naming `what` as soon as it cannot be started. Every wait for a
 * child goes through this (or `run`/`startDaemon`): without an 'error'
 * listener a failed spawn is thrown from the event loop and the child's
 * 'exit' never comes, so a wait on it hangs until the test's timeout.
 */
export function childClosed(child: ChildProcess, what: string): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  const [cmd = what] = child.spawnargs;
  return new Promise((resolve, reject) => {
    child.on('error', (error: NodeJS.ErrnoException) => {
      // after a start (a failed kill, say) the child runs on and its 'close' still comes
      if (child.pid === undefined) reject(chainError(what, new Error(spawnFailure(cmd, error), { cause: error })));
    });
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
}

function tail(text: string, lines = 15): string {
  const all = text.trimEnd().split('\n');
  return all.slice(-lines).join('\n');
}

/** Runs a command to completion; rejects with a CommandError naming it when it fails. */
export function run(cmd: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const display = options.display ?? [cmd, ...args].join(' ');
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(cmd, args, {
        cwd: options.cwd,
        env: options.env ?? process.env,
        stdio: [options.input === undefined ? 'ignore' : 'pipe', options.stdoutFd ?? 'pipe', 'pipe'],
      });
    } catch (error) {
      reject(new CommandError(`running ${display}: ${(error as Error).message}`, null, '', '', { cause: error }));
      return;
    }
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    let timer: NodeJS.Timeout | undefined;
    let timedOut = false;
    if (options.timeoutMs !== undefined) {
      timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, options.timeoutMs);
    }
    child.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const what = child.pid === undefined ? spawnFailure(cmd, error, options.cwd) : error.message;
      reject(new CommandError(`running ${display}: ${what}`, null, '', '', { cause: error }));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) {
        resolve({ stdout, stderr });
        return;
      }
      const how = timedOut
        ? `timed out after ${options.timeoutMs} ms`
        : signal
          ? `killed by ${signal}`
          : `exit code ${code}`;
      const detail = tail(stderr || stdout);
      reject(new CommandError(`running ${display}: ${how}${detail ? `\n${detail}` : ''}`, code, stdout, stderr));
    });
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  alive(): boolean;
}

/** Starts a long-running process with stdout and stderr appended to `logFile`. */
export function startDaemon(
  name: string,
  cmd: string,
  args: readonly string[],
  options: { logFile: string; cwd?: string; env?: NodeJS.ProcessEnv },
): Daemon {
  const fd = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(cmd, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      // after a start (a failed kill, say) the daemon runs on and its 'exit' still comes
      if (child.pid !== undefined) return;
      done = true;
      resolve(`failed to start: ${spawnFailure(cmd, error, options.cwd)}`);
    });
  });
  if (child.pid === undefined) {
    // spawn failed synchronously enough that there is no pid; the 'error' event follows.
    return { name, pid: -1, logFile: options.logFile, child, exited, alive: () => false };
  }
  const pid = child.pid;
  return { name, pid, logFile: options.logFile, child, exited, alive: () => !done };
}

/** How a daemon ended (when it has) and the last lines of its log, for error messages. */
export async function logTail(daemon: Daemon, lines = 15): Promise<string> {
  let log = '';
  try {
    log = tail(await readFile(daemon.logFile, 'utf8'), lines);
  } catch {
    // no log yet
  }
  const ended = daemon.alive() ? '' : `${daemon.name} ended: ${describeExit(await daemon.exited)}`;
  return [ended, log && `last lines of ${daemon.logFile}:\n${log}`].filter(Boolean).join('\n');
}

function describeExit(status: number | string): string {
  return typeof status === 'number' ? `exit code ${status}` : status;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopDaemon(daemon: Daemon, graceMs = 10_000): Promise<void> {
  if (!daemon.alive()) return;
  daemon.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), graceMs);
  });
  const outcome = await Promise.race([daemon.exited, timeout]);
  clearTimeout(timer);
  if (outcome === 'timeout' && daemon.alive()) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
}

/** True when a process with this pid exists and is not a zombie. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Kills a process that is not (necessarily) our child: SIGTERM, then SIGKILL. */
export async function killPid(pid: number, graceMs = 5_000): Promise<void> {
  const send = (signal: NodeJS.Signals): void => {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  };
  if (!pidAlive(pid)) return;
  send('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
  if (pidAlive(pid)) {
    send('SIGKILL');
    const hardDeadline = Date.now() + 5_000;
    while (pidAlive(pid) && Date.now() < hardDeadline) await sleep(50);
  }
}

/** Pids of every process whose command line or working directory mentions `dir`. */
export function processesUsing(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // no access or gone
      }
      const mentions = cmdline.includes(`${dir}/`) || cmdline.includes(`${dir}\0`) || cmdline.endsWith(dir);
      if ((mentions || cwd === dir || cwd.startsWith(`${dir}/`)) && pidAlive(pid)) found.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

/** A port on 127.0.0.1 that nothing listened on a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('picking a free port on 127.0.0.1: no address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** True when something accepts a TCP connection on 127.0.0.1:`port`. */
export function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** TCP ports a process listens on (read from /proc, so it names exactly that process's sockets). */
export function listeningPorts(pid: number): number[] {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        const match = /^socket:\[(\d+)\]$/.exec(target);
        if (match?.[1]) inodes.add(match[1]);
      } catch {
        // closed meanwhile
      }
    }
  } catch {
    return [];
  }
  const ports: number[] = [];
  for (const table of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    if (!existsSync(table)) continue;
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const state = fields[3];
      const inode = fields[9];
      if (!local || state !== '0A' || !inode || !inodes.has(inode)) continue;
      const port = parseInt(local.split(':')[1] ?? '', 16);
      if (!Number.isNaN(port)) ports.push(port);
    }
  }
  return ports;
}

/** Polls `probe` until it returns true, failing when `alive` turns false or time runs out. */
export async function waitUntil(
  what: string,
  probe: () => Promise<boolean>,
  options: { alive?: () => boolean; timeoutMs?: number; intervalMs?: number; onFail?: () => Promise<string> },
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  for (;;) {
    if (options.alive && !options.alive()) {
      const detail = options.onFail ? await options.onFail() : '';
      throw new Error(`waiting for ${what}: the process exited${detail ? `\n${detail}` : ''}`);
    }
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) {
      const detail = options.onFail ? await options.onFail() : '';
      throw new Error(`waiting for ${what}: not ready after ${options.timeoutMs ?? 30_000} ms${detail ? `\n${detail}` : ''}`);
    }
    await sleep(options.intervalMs ?? 50);
  }
}
