/**
 * What both apps' entry points do around their command, light enough to load before
 * anything else (it imports only `signals.ts`): a lone `-version` is answered without loading
 * the command; otherwise the command is loaded, SIGINT/SIGTERM abort it, and an error it
 * throws is written as `ERROR: <stack>` with exit code 1. It returns the exit code: ending
 * the process stays with the app's `main.ts`.
 */
import { abortOnSignals, type SignalSource } from './signals.ts';

const VERSION_ONLY = /^--?version(=(true|1|t|T|TRUE|True))?$/;

interface Writable {
  write(text: string): unknown;
}

export interface EntryProcess extends SignalSource {
  env: Readonly<Record<string, string | undefined>>;
  stdout: Writable;
  stderr: Writable;
}

/** What every command of the apps runs with: the process's streams and environment, the version, the abort signal. */
export interface EntryRun<P extends EntryProcess> {
  argv: readonly string[];
  env: P['env'];
  stdout: P['stdout'];
  stderr: P['stderr'];
  version: string;
  signal: AbortSignal;
}

export interface EntryOptions<P extends EntryProcess> {
  argv: readonly string[];
  /** Whether a lone `-version` (Go's bool flag forms) is answered here. */
  answersVersion: boolean;
  version: () => string;
  /** Loads the command (a dynamic import) and returns it. */
  load: () => Promise<(run: EntryRun<P>) => Promise<number>>;
}

export async function runEntry<P extends EntryProcess>(proc: P, options: EntryOptions<P>): Promise<number> {
  const { argv } = options;
  try {
    if (options.answersVersion && argv.length === 1 && VERSION_ONLY.test(argv[0]!)) {
      proc.stdout.write(`${options.version()}\n`);
      return 0;
    }
    const command = await options.load();
    const abort = abortOnSignals(proc);
    try {
      return await command({ argv, env: proc.env, stdout: proc.stdout, stderr: proc.stderr, version: options.version(), signal: abort.signal });
    } finally {
      abort.dispose();
    }
  } catch (err) {
    proc.stderr.write(`ERROR: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
