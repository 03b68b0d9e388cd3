/**
 * `node tools/testenv/src/cli.ts up`: starts a test environment, prints its JSON
 * on stdout and keeps it running until SIGINT or SIGTERM, then tears it down.
 */
import { describeEnv } from './describe.ts';
import { startTestEnv, stopTestEnv } from './env.ts';
import { waitForBuildkitd } from './types.ts';

const usage = 'usage: node tools/testenv/src/cli.ts up';

async function up(): Promise<void> {
  const handle = await startTestEnv({ log: (line) => process.stderr.write(`${line}\n`) });
  // a person wants the whole environment: wait for the background buildkitd
  if (handle.env.buildkitd) handle.env.buildkitd.endpoint = await waitForBuildkitd(handle.env);
  process.stderr.write(`${describeEnv(handle.env)}\n`);
  process.stdout.write(`${JSON.stringify(handle.env, null, 2)}\n`);
  process.stderr.write('testenv: running; stop with SIGINT (Ctrl-C) or SIGTERM\n');
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  process.stderr.write(`testenv: ${signal}, stopping\n`);
  await stopTestEnv(handle);
  process.stderr.write('testenv: stopped\n');
}

const command = process.argv[2];
if (command === 'up') {
  up().catch((error: unknown) => {
    process.stderr.write(`testenv: ${formatError(error)}\n`);
    process.exitCode = 1;
  });
} else {
  process.stderr.write(`${usage}\n`);
  process.exitCode = 2;
}

function formatError(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join('\n  caused by: ');
}
