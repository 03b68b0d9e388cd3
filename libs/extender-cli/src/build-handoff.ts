/**
 * Build kind with an in-place backend: after the Dockerfiles changed the running root
 * filesystem, the build phase runs on it, as the Go extender does (contract §5, build
 * kind): the extended image's `Env` is exported, `<layers>` is handed to uid:gid when they
 * do not own it, privileges drop to uid:gid with `HOME`/`USER` from the extended
 * `/etc/passwd`, and the lifecycle's builder runs with the same inputs. Running the build as
 * root is refused.
 *
 * The builder gets its inputs through the `CNB_*` variables (every builder version reads
 * them; flags differ between versions).
 */
import { spawn } from 'node:child_process';
import { readdir, readFile, lchown, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { parsePasswd, type PasswdEntry } from '@cnb-extender/oci';
import { EXIT_CODES, ExtenderError, type ExtenderInputs } from '@cnb-extender/platform';
import type { Writer } from './render.ts';

/** Where the builder is looked for; `CNB_LIFECYCLE_BUILDER` overrides it. */
export const BUILDER_PATH_ENV = 'CNB_LIFECYCLE_BUILDER';
export const DEFAULT_BUILDER_PATH = '/cnb/lifecycle/builder';

export interface BuildHandOff {
  builder: string;
  env: Record<string, string>;
  uid: number;
  gid: number;
}

/**
 * The builder's environment: the process environment, then the extended image's `Env`
 * (split on the first `=`, so values may contain `=`), then the resolved inputs, then
 * `HOME`/`USER` of uid.
 */
export function buildEnvironment(
  processEnv: Readonly<Record<string, string | undefined>>,
  imageEnv: readonly string[],
  inputs: ExtenderInputs,
  user: PasswdEntry | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(processEnv)) if (value !== undefined) env[key] = value;
  for (const entry of imageEnv) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  Object.assign(env, {
    CNB_APP_DIR: inputs.appDir,
    CNB_ANALYZED_PATH: inputs.analyzedPath,
    CNB_BUILDPACKS_DIR: inputs.buildpacksDir,
    CNB_BUILD_CONFIG_DIR: inputs.buildConfigDir,
    CNB_EXEC_ENV: inputs.execEnv,
    CNB_GROUP_PATH: inputs.groupPath,
    CNB_LAYERS_DIR: inputs.layersDir,
    CNB_LOG_LEVEL: inputs.logLevel,
    CNB_NO_COLOR: String(inputs.noColor),
    CNB_PLAN_PATH: inputs.planPath,
    CNB_PLATFORM_DIR: inputs.platformDir,
    CNB_USER_ID: String(inputs.uid),
    CNB_GROUP_ID: String(inputs.gid),
  });
  if (user) {
    env['HOME'] = user.home;
    env['USER'] = user.name;
  }
  return env;
}

/**
 * chown -R without following symlinks. A run-kind extender may be writing
 * `<layers>/extended` at the same time (pack runs both kinds at once): an entry
 * that is renamed or removed while the walk reaches it is skipped, not an error.
 */
async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  let names: string[];
  try {
    await lchown(path, uid, gid);
    if (!(await lstat(path)).isDirectory()) return;
    names = await readdir(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  for (const name of names) await chownTree(join(path, name), uid, gid);
}

/** Give `<layers>` to uid:gid when they do not own it (the lifecycle's EnsureOwner). */
export async function ensureOwner(dir: string, uid: number, gid: number): Promise<boolean> {
  const info = await lstat(dir);
  if (info.uid === uid && info.gid === gid) return false;
  await chownTree(dir, uid, gid);
  return true;
}

export interface PlanHandOffOptions {
  inputs: ExtenderInputs;
  env: Readonly<Record<string, string | undefined>>;
  /** The extended image's `Env`. */
  imageEnv: readonly string[];
  /** Default: the live `/etc/passwd` (the in-place backend changed the running root). */
  passwdFile?: string;
}

export async function planBuildHandOff(options: PlanHandOffOptions): Promise<BuildHandOff> {
  const { inputs } = options;
  if (inputs.uid === 0) {
    throw new ExtenderError('BUILD_HANDOFF_FAILED', 'failed to build: refusing to run the build phase as root; set -uid / CNB_USER_ID to the CNB user', { action: 'build' });
  }
  const passwd = await readFile(options.passwdFile ?? '/etc/passwd', 'utf8').catch(() => '');
  const user = parsePasswd(passwd).find((e) => e.uid === inputs.uid);
  const builder = options.env[BUILDER_PATH_ENV] || DEFAULT_BUILDER_PATH;
  return { builder, env: buildEnvironment(options.env, options.imageEnv, inputs, user), uid: inputs.uid, gid: inputs.gid };
}

export interface RunHandOffOptions {
  stdout: Writer;
  stderr: Writer;
  signal?: AbortSignal;
  /** Current process uid (`process.getuid()`): privileges can only be dropped from root. */
  currentUid: number;
}

/** Run the builder; resolves to its exit code (128 + n when a signal ended it). */
export function runBuildHandOff(plan: BuildHandOff, options: RunHandOffOptions): Promise<number> {
  return new Promise((resolve, reject) => {
    const ids = options.currentUid === 0 ? { uid: plan.uid, gid: plan.gid } : {};
    if (options.currentUid !== 0 && options.currentUid !== plan.uid) {
      reject(new ExtenderError('BUILD_HANDOFF_FAILED', `failed to build: cannot switch to uid ${plan.uid} without root (running as ${options.currentUid})`, { action: 'build' }));
      return;
    }
    const child = spawn(plan.builder, [], { ...ids, env: plan.env, stdio: ['ignore', 'pipe', 'pipe'], argv0: 'builder' });
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => options.stdout.write(chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => options.stderr.write(chunk));
    const onAbort = () => child.kill('SIGTERM');
    options.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('error', (err) => {
      options.signal?.removeEventListener('abort', onAbort);
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      reject(
        new ExtenderError(
          'BUILD_HANDOFF_FAILED',
          `failed to build: ${missing ? `the builder ${plan.builder} does not exist (set ${BUILDER_PATH_ENV} to its path)` : `starting ${plan.builder}: ${err.message}`}`,
          { action: 'build', cause: err },
        ),
      );
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve(signal ? 128 + signalNumber(signal) : (code ?? EXIT_CODES.failed));
    });
  });
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 } as Record<string, number>)[signal] ?? 0;
}
