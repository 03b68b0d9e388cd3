/**
 * Test fixture (not library code): runs `extend()` with a slow FakeBackend in a
 * child process, the way a CLI would: SIGTERM aborts the run through its
 * AbortSignal. Writes one JSON line per event to stdout; exits with the
 * error's exit code.
 *
 * argv[2]: JSON of `{ kind, inputs }`.
 */
import { extend, type ExtendInputs } from './extend.ts';
import { ExtenderError } from './errors.ts';
import { FakeBackend } from './testing/fake-backend.ts';

const { kind, inputs } = JSON.parse(process.argv[2] ?? '{}') as { kind: 'build' | 'run'; inputs: ExtendInputs };
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort(new Error('received SIGTERM')));

try {
  await extend({
    kind,
    inputs,
    backend: new FakeBackend({ instructionDelayMs: 100 }),
    signal: controller.signal,
    events: { emit: (event) => process.stdout.write(`${JSON.stringify(event)}\n`) },
  });
  process.exitCode = 0;
} catch (err) {
  process.stdout.write(`${JSON.stringify({ type: 'error', code: (err as ExtenderError).code, message: (err as Error).message })}\n`);
  process.exitCode = err instanceof ExtenderError ? err.exitCode : 1;
}
