/**
 * The filesystem side of libs/dockerfile's evaluated steps: the evaluator has
 * already expanded every word and worked out the config, env, user and
 * working directory each step sees (BuildKit's dispatch rules); this runs the
 * steps that touch the root filesystem.
 */
import type { DockerignoreFile, Step } from '@cnb-extender/dockerfile';
import { copyIntoRoot, parseChmod } from './copy.ts';
import { ensureDir, runArgv, type StepResult } from './executor.ts';
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
