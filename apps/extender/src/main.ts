/**
 * `extender [flags]`: the standalone extend phase. The only place that ends the process.
 *
 * `extender -version` answers before the command (and everything it imports) is loaded:
 * it is what platforms and health checks call most, and it should start fast.
 */
import { appVersion } from './version.ts';

const VERSION_ONLY = /^--?version(=(true|1|t|T|TRUE|True))?$/;

async function main(argv: readonly string[]): Promise<number> {
  if (argv.length === 1 && VERSION_ONLY.test(argv[0]!)) {
    process.stdout.write(`${appVersion()}\n`);
    return 0;
  }
  const { abortOnSignals, runExtendCommand } = await import('@cnb-extender/extender-cli');
  const abort = abortOnSignals(process);
  try {
    return await runExtendCommand({
      argv,
      env: process.env,
      stdout: process.stdout,
      stderr: process.stderr,
      version: appVersion(),
      programName: 'extender',
      entry: 'extender',
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
