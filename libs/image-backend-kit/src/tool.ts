/**
 * Run a tool (buildah, …) as a child process: output lines go to a callback
 * (the backend turns them into events), the last lines are kept for errors,
 * the abort signal ends it. Never prints.
 */
import { spawn } from 'node:child_process';
import { ImageBackendError } from './errors.ts';

export interface RunToolOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Every output line (stdout and stderr), as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How many trailing lines to keep (default 40). */
  keepLines?: number;
  /** Bytes written to the tool's stdin. */
  input?: string | Buffer;
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last output lines (both streams, in arrival order). */
  tail: string[];
  stdout: string;
}

/** Run `command args…`; resolves with its exit status (a non-zero exit does not reject). */
export function runTool(command: string, args: readonly string[], options: RunToolOptions = {}): Promise<ToolResult> {
  const keep = options.keepLines ?? 40;
  return new Promise((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(options.signal.reason instanceof Error ? options.signal.reason : new Error('aborted'));
      return;
    }
    const child = spawn(command, args, { env: options.env ?? process.env, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const tail: string[] = [];
    const stdoutParts: string[] = [];
    const partial = { stdout: '', stderr: '' };
    const onAbort = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
      } catch {
        // already gone
      }
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const feed = (stream: 'stdout' | 'stderr', text: string, flush: boolean) => {
      const all = partial[stream] + text;
      const lines = all.split('\n');
      partial[stream] = flush ? '' : (lines.pop() ?? '');
      for (const line of lines) {
        if (flush && line === '') continue;
        tail.push(line);
        if (tail.length > keep) tail.shift();
        options.onLine?.(line, stream);
      }
    };
    child.stdout.setEncoding('utf8').on('data', (text: string) => {
      stdoutParts.push(text);
      feed('stdout', text, false);
    });
    child.stderr.setEncoding('utf8').on('data', (text: string) => feed('stderr', text, false));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
    child.on('error', (err: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', onAbort);
      reject(new ImageBackendError(`running ${command}: ${err.code === 'ENOENT' ? 'not found in PATH' : err.message}`, { cause: err }));
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      feed('stdout', '', true);
      feed('stderr', '', true);
      if (options.signal?.aborted) {
        reject(options.signal.reason instanceof Error ? options.signal.reason : new Error('aborted'));
        return;
      }
      resolve({ code, signal, tail, stdout: stdoutParts.join('') });
    });
  });
}
