import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/**
 * A work directory private to this process under the extend dir
 * (`<extend-dir>/work-XXXXXX`), unique even when several extenders share the
 * dir (pack runs build and run extension at once on one volume). It is removed
 * when `remove()` is called (success and failure paths alike), when the
 * process exits, and on SIGINT/SIGTERM: then `signal` is aborted first (so a
 * running RUN's process group is killed), the directory is removed, and the
 * signal is raised again with its default action unless someone else
 * listens for it. Afterwards the extend dir holds only what others put there
 * (`cache/`).
 */
export interface WorkArea {
  readonly dir: string;
  /** Aborted when SIGINT or SIGTERM arrives (with an Error naming the signal). */
  readonly signal: AbortSignal;
  /** Removes the directory and the handlers; safe to call more than once. */
  remove(): Promise<void>;
}

export class WorkAreaError extends Error {
  override name = 'WorkAreaError';
}

export interface WorkAreaOptions {
  /** Signals that clean up (default SIGINT, SIGTERM, SIGHUP). */
  signals?: NodeJS.Signals[];
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Detaches anything still mounted at or below `dir` in this mount namespace (deepest first). */
function unmountBelow(dir: string): void {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const points = text
    .split('\n')
    .map((l) => unescapeMount(l.split(' ')[4] ?? ''))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
  for (const p of points) spawnSync('umount', ['-l', p], { stdio: 'ignore' });
}

function removeSync(dir: string): void {
  unmountBelow(dir);
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
}

export function createWorkArea(extendDir: string, options: WorkAreaOptions = {}): WorkArea {
  const base = resolve(extendDir);
  let dir: string;
  try {
    mkdirSync(base, { recursive: true });
    dir = mkdtempSync(join(base, 'work-'));
  } catch (cause) {
    throw new WorkAreaError(`creating a work directory under ${base}: ${(cause as Error).message}`, { cause });
  }
  const controller = new AbortController();
  const signals = options.signals ?? ['SIGINT', 'SIGTERM', 'SIGHUP'];
  let removed = false;

  const detach = (): void => {
    for (const s of signals) process.removeListener(s, onSignal);
    process.removeListener('exit', onExit);
  };
  function onSignal(sig: NodeJS.Signals): void {
    controller.abort(new WorkAreaError(`interrupted by ${sig}`));
    detach();
    if (!removed) {
      removed = true;
      removeSync(dir);
    }
    if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
  }
  function onExit(): void {
    if (!removed) {
      removed = true;
      removeSync(dir);
    }
  }
  for (const s of signals) process.on(s, onSignal);
  process.on('exit', onExit);

  return {
    dir,
    signal: controller.signal,
    async remove(): Promise<void> {
      detach();
      if (removed) return;
      removed = true;
      unmountBelow(dir);
      try {
        await rm(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch (cause) {
        throw new WorkAreaError(`removing work directory ${dir}: ${(cause as Error).message}`, { cause });
      }
    },
  };
}

/** Runs `fn` with a fresh work area that is removed afterwards, whether `fn` succeeds or fails. */
export async function withWorkArea<T>(extendDir: string, fn: (area: WorkArea) => Promise<T>, options?: WorkAreaOptions): Promise<T> {
  const area = createWorkArea(extendDir, options);
  try {
    return await fn(area);
  } finally {
    await area.remove();
  }
}
