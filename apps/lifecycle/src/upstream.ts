/**
 * Hand a phase to the upstream (Go) lifecycle binary: same arguments, inherited stdio,
 * SIGINT/SIGTERM/SIGHUP/SIGQUIT forwarded, its exit code returned (128 + n when a signal
 * ended it).
 */
import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { EXIT_CODES, ExtenderError } from '@cnb-extender/platform';

/** Where the upstream lifecycle is looked for; `CNB_UPSTREAM_LIFECYCLE` overrides it. */
export const UPSTREAM_LIFECYCLE_ENV = 'CNB_UPSTREAM_LIFECYCLE';
export const DEFAULT_UPSTREAM_LIFECYCLE = '/cnb/lifecycle/upstream/lifecycle';

export function upstreamPath(env: Readonly<Record<string, string | undefined>>): string {
  const value = env[UPSTREAM_LIFECYCLE_ENV];
  return value === undefined || value === '' ? DEFAULT_UPSTREAM_LIFECYCLE : value;
}

export interface UpstreamRun {
  path: string;
  /** What the upstream binary sees as its name (`analyzer`, or `lifecycle` with a verb in args). */
  argv0: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  /** Phase name for messages. */
  phase: string;
}

const FORWARDED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const;

export function checkUpstream(path: string, phase: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch (cause) {
    const why = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'it does not exist' : `it is not executable (${(cause as Error).message})`;
    throw new ExtenderError(
      'UPSTREAM_FAILED',
      `failed to run ${phase}: this lifecycle only implements the extend phase and hands ${phase} to the upstream lifecycle at ${path}, but ${why}; install it there or set ${UPSTREAM_LIFECYCLE_ENV} to its path`,
      { action: `run ${phase}`, cause },
    );
  }
}

export function runUpstream(run: UpstreamRun, proc: NodeJS.Process = process): Promise<number> {
  checkUpstream(run.path, run.phase);
  return new Promise((resolve, reject) => {
    const child = spawn(run.path, [...run.args], { argv0: run.argv0, env: run.env, stdio: 'inherit' });
    const forward = FORWARDED.map((signal) => {
      const listener = () => {
        child.kill(signal);
      };
      proc.on(signal, listener);
      return [signal, listener] as const;
    });
    const done = () => {
      for (const [signal, listener] of forward) proc.off(signal, listener);
    };
    child.on('error', (err) => {
      done();
      reject(new ExtenderError('UPSTREAM_FAILED', `failed to run ${run.phase}: starting ${run.path}: ${err.message}`, { action: `run ${run.phase}`, cause: err }));
    });
    child.on('exit', (code, signal) => {
      done();
      if (signal) resolve(128 + (osConstants.signals[signal] ?? 0));
      else resolve(code ?? EXIT_CODES.failed);
    });
  });
}
