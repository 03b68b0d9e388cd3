/**
 * The filesystem side of libs/dockerfile's evaluated steps: the evaluator has
 * already expanded every word and worked out the config, env, user and
 * working directory each step sees (BuildKit's dispatch rules); this runs the
 * steps that touch the root filesystem.
 */
import { chmodSync, lchownSync, mkdirSync, statSync } from 'node:fs';
import type { DockerignoreFile, Step } from '@cnb-extender/dockerfile';
import { copyIntoRoot, parseChmod } from './copy.ts';
import { resolveInRoot } from './paths.ts';
import { RunError, runProcess, type RunSpec } from './run.ts';
import { resolveOwner, resolveUser } from './user.ts';

export interface StepOptions {
  root: string;
  contextDir: string;
  /** The build's ignore file (`readDockerignore`); COPY/ADD do not see what it excludes. */
  ignore?: DockerignoreFile;
  /** RUN gets the network unless the step says `--network=none` (default false). */
  network?: boolean;
  allowRemote?: boolean;
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

export class UnsupportedStepError extends Error {
  override name = 'UnsupportedStepError';
}

function unsupported(what: string): never {
  throw new UnsupportedStepError(`${what} is not supported by the in-place backend`);
}

/** Runs the filesystem part of one evaluated step; config-only steps return at once. */
export async function executeStep(step: Step, options: StepOptions): Promise<StepResult> {
  options.signal?.throwIfAborted();
  const none: StepResult = { createdBy: step.original, changesFilesystem: false, touched: [] };
  switch (step.kind) {
    case 'run': {
      if (step.mounts.length > 0) unsupported('RUN --mount');
      if (step.inlineScript) unsupported('a RUN heredoc with a #! script');
      if (step.devices.length > 0) unsupported('RUN --device');
      const env = [...step.env];
      const user = resolveUser(options.root, step.user);
      if (!env.some((kv) => kv.startsWith('HOME='))) env.push(`HOME=${user.home}`);
      await runArgv({
        root: options.root,
        argv: step.argv,
        env,
        user,
        cwd: step.workdir || '/',
        network: (options.network ?? false) && step.network !== 'none',
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.onOutput ? { onOutput: options.onOutput } : {}),
      });
      return { createdBy: step.original, changesFilesystem: true, touched: null };
    }
    case 'copy':
    case 'add': {
      if (step.kind === 'copy' && step.from !== '') unsupported(`COPY --from=${step.from} (an extension has one stage and no other images)`);
      if (step.kind === 'copy' && step.parents) unsupported('COPY --parents');
      if (step.sourceContents.length > 0) unsupported(`${step.kind.toUpperCase()} from a heredoc`);
      if (step.exclude.length > 0) unsupported('--exclude');
      if (step.kind === 'add' && step.checksum !== '') unsupported('ADD --checksum');
      const owner = step.chown === '' ? undefined : resolveOwner(options.root, step.chown);
      const touched = await copyIntoRoot({
        root: options.root,
        contextDir: options.contextDir,
        ...(options.ignore ? { ignore: options.ignore } : {}),
        sources: step.sources,
        dest: step.dest,
        cwd: step.workdir || '/',
        ...(owner ? { owner } : {}),
        ...(step.chmod === '' ? {} : { mode: parseChmod(step.chmod) }),
        add: step.kind === 'add',
        allowRemote: options.allowRemote ?? false,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return { createdBy: step.original, changesFilesystem: true, touched };
    }
    case 'workdir': {
      const created = ensureDir(options.root, step.workdir, () => {
        const u = resolveUser(options.root, step.user);
        return { uid: u.uid, gid: u.gid };
      });
      return { createdBy: step.original, changesFilesystem: created.length > 0, touched: created };
    }
    default:
      return none;
  }
}

/** Creates image directory `path` and missing parents (0755); returns the image paths created. */
function ensureDir(root: string, path: string, owner: () => { uid: number; gid: number }): string[] {
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

const STDERR_TAIL = 1024;

/**
 * Runs a RUN's process (creating its working directory when missing) and
 * fails with the argv, user, directory, exit code and the end of stderr.
 */
async function runArgv(spec: RunSpec): Promise<void> {
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
