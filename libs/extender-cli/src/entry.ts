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
  stdout: Writable;
  stderr: Writable;
}

export interface EntryOptions {
  argv: readonly string[];
  /** Whether a lone `-version` (Go's bool flag forms) is answered here. */
  answersVersion: boolean;
  version: () => string;
  /** Loads the command (a dynamic import) and returns it; it runs with the abort signal. */
  load: () => Promise<(signal: AbortSignal) => Promise<number>>;
}

export async function runEntry(proc: EntryProcess, options: EntryOptions): Promise<number> {
  try {
    if (options.answersVersion && options.argv.length === 1 && VERSION_ONLY.test(options.argv[0]!)) {
      proc.stdout.write(`${options.version()}\n`);
      return 0;
    }
    const run = await options.load();
    const abort = abortOnSignals(proc);
    try {
      return await run(abort.signal);
    } finally {
      abort.dispose();
    }
  } catch (err) {
    proc.stderr.write(`ERROR: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
