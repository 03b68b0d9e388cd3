/**
 * `lifecycle` multi-call entry. The only place that ends the process.
 *
 * The name it was invoked by: from the sources (`node main.ts`, or a symlink to it) it is
 * `process.argv[1]`; as a single executable, `process.argv[1]` is the executable itself and
 * the name used to start it (a symlink's name) is `process.argv0`.
 *
 * `lifecycle -version` answers before the rest is loaded, so it starts fast.
 */
import { isSea } from 'node:sea';
import { dispatchName, invokedName } from './phases.ts';
import { appVersion } from './version.ts';

const VERSION_ONLY = /^--?version(=(true|1|t|T|TRUE|True))?$/;

async function main(argv: readonly string[]): Promise<number> {
  const invokedAs = invokedName(isSea() ? process.argv0 : (process.argv[1] ?? 'lifecycle'));
  if (dispatchName(invokedAs).kind === 'self' && argv.length === 1 && VERSION_ONLY.test(argv[0]!)) {
    process.stdout.write(`${appVersion()}\n`);
    return 0;
  }
  const [{ abortOnSignals }, { runLifecycle }] = await Promise.all([import('@cnb-extender/extender-cli'), import('./lifecycle.ts')]);
  const abort = abortOnSignals(process);
  try {
    return await runLifecycle({
      invokedAs,
      argv,
      env: process.env,
      stdout: process.stdout,
      stderr: process.stderr,
      version: appVersion(),
      signal: abort.signal,
    });
  } finally {
    abort.dispose();
  }
}

// Exit explicitly: a backend may leave a socket or timer behind. stdout and stderr are
// synchronous for files, pipes and terminals on Linux, so nothing written is lost.
main(process.argv.slice(2)).then(
  (code) => {
    process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`ERROR: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
