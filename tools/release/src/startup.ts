/**
 * What the single executables run before anything else: bundle.ts puts it at the top of
 * each bundle.
 *
 * A platform may set NODE_EXTRA_CA_CERTS for every container it starts
 * (`/etc/ssl/certs/ca-certificates.crt` is common), also for images without that file: a
 * run image, a busybox builder. Node reads the variable once, at start, and each time it
 * builds its root certificates (loading `node:tls` or `node:http2` does) prints
 * "Warning: Ignoring extra certs from …, load failed" to stderr from C++, where no
 * JavaScript can keep it quiet. So when the variable names a file that cannot be read, the
 * executable starts itself again without it: the same process (execve keeps the pid, the
 * open files and the arguments, including the name it was started by), and the value is
 * put back into the environment at once, so that whatever the extender runs (RUN
 * instructions, the build phase) sees the variable as the platform set it, where the file
 * may exist by then. With a readable file nothing happens and Node loads it as usual.
 */
import { accessSync, constants } from 'node:fs';
import { isSea } from 'node:sea';

/** Carries NODE_EXTRA_CA_CERTS across the restart, and says a restart happened. */
export const HELD_EXTRA_CA_CERTS = 'CNB_EXTENDER_HELD_NODE_EXTRA_CA_CERTS';

/**
 * Run first in the single executable (bundle.ts injects the call as the bundle's entry).
 * @public
 */
export function holdUnreadableExtraCaCerts(): void {
  const env = process.env;
  const held = env[HELD_EXTRA_CA_CERTS];
  if (held !== undefined) {
    delete env[HELD_EXTRA_CA_CERTS];
    env['NODE_EXTRA_CA_CERTS'] = held;
    return;
  }
  const file = env['NODE_EXTRA_CA_CERTS'];
  if (file === undefined || file === '' || typeof process.execve !== 'function') return;
  try {
    accessSync(file, constants.R_OK);
    return;
  } catch {
    // not there or not readable: start again without it
  }
  const { NODE_EXTRA_CA_CERTS: _, ...rest } = env;
  const restartEnv: Record<string, string> = { [HELD_EXTRA_CA_CERTS]: file };
  for (const [name, value] of Object.entries(rest)) if (value !== undefined) restartEnv[name] = value;
  // A single executable's argv[1] is the executable again (Node puts it there); a script run
  // by node needs its own options and the script path back.
  const args = isSea() ? process.argv.slice(2) : [...process.execArgv, ...process.argv.slice(1)];
  // execve is experimental in Node 24 and says so through a warning emitted on the next tick,
  // which never comes when it succeeds; should it fail, the executable goes on with the warning.
  try {
    process.execve(process.execPath, [process.argv0, ...args], restartEnv);
  } catch {
    // keep running as started
  }
}
