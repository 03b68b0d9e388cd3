/**
 * Test fixture (not library code): runs `extend()` with a slow FakeBackend in a
 * child process, the way a CLI would: SIGTERM aborts the run through its
 * AbortSignal. Writes one JSON line per event to stdout, and one `error` line
 * with the error's code when it fails; exits 0 when it succeeds, else 1 (the
 * code → exit-code table belongs to the CLIs, which the core does not import).
 *
 * argv[2]: JSON of `{ kind, inputs, stall }`. `stall: 'apply'` makes every
 * instruction slow; `stall: 'output'` makes the last new layer's blob stream
 * stop half-way (after printing `{"type":"blob-opened"}`), so the signal arrives
 * while `<extended>/run` is being written.
 */
import { createReadStream } from 'node:fs';
import { PassThrough } from 'node:stream';
import type { ImageDescription } from './backend.ts';
import { extend, type ExtendInputs } from './extend.ts';
import type { ExtenderError } from './errors.ts';
import { FakeBackend } from './testing/fake-backend.ts';

const { kind, inputs, stall } = JSON.parse(process.argv[2] ?? '{}') as { kind: 'build' | 'run'; inputs: ExtendInputs; stall: 'apply' | 'output' };

/** A backend whose last new layer blob never finishes streaming. */
class StallingOutput extends FakeBackend {
  override async apply(...args: Parameters<FakeBackend['apply']>): Promise<ImageDescription> {
    const result = await super.apply(...args);
    const last = result.layers.at(-1)!;
    const source = last.blob;
    if (source?.kind !== 'file') return result;
    last.blob = {
      kind: 'stream',
      open: () => {
        const out = new PassThrough();
        // A real slow source (socket, pipe) holds the event loop open; so does this one.
        const hold = setInterval(() => {}, 60_000);
        out.on('close', () => clearInterval(hold));
        const file = createReadStream(source.path, { start: 0, end: 9 });
        file.on('data', (chunk) => out.write(chunk));
        file.on('end', () => process.stdout.write(`${JSON.stringify({ type: 'blob-opened' })}\n`));
        return out; // never ended
      },
    };
    return result;
  }
}
const controller = new AbortController();
process.on('SIGTERM', () => controller.abort(new Error('received SIGTERM')));

try {
  await extend({
    kind,
    inputs,
    backend: stall === 'output' ? new StallingOutput() : new FakeBackend({ instructionDelayMs: 100 }),
    signal: controller.signal,
    events: { emit: (event) => process.stdout.write(`${JSON.stringify(event)}\n`) },
  });
  process.exitCode = 0;
} catch (err) {
  process.stdout.write(`${JSON.stringify({ type: 'error', code: (err as ExtenderError).code, message: (err as Error).message })}\n`);
  process.exitCode = 1;
}
