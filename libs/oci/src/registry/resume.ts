/**
 * Downloads that survive a broken connection: when a body fails part-way, the
 * rest is asked for again (`Range: bytes=<received>-`) after a backoff, and the
 * stream carries on as if nothing happened. A registry that ignores Range
 * answers 200 with the whole content; its first `<received>` bytes are then
 * read and dropped. Whoever reads the stream checks the digest of the whole.
 */
import { pause } from './retry.ts';

/** A body to carry on with: it starts at byte `start` of the content. */
export interface ResumedBody {
  body: ReadableStream<Uint8Array>;
  start: number;
}

export interface ResumeOptions {
  /** Bodies in all, the first included. */
  attempts: number;
  /** Backoff before the attempt after `attempt` (1-based). */
  delayMs(attempt: number): number;
  /** Whether a failure of the body is worth another attempt. */
  retryable(error: unknown): boolean;
  /** Ask for the content from byte `offset` on. */
  reopen(offset: number): Promise<ResumedBody>;
  /** Told before each backoff. */
  onRetry?(retry: { attempt: number; offset: number; delayMs: number; error: unknown }): void;
  /** The error the stream fails with when it gives up (`attempts`: bodies tried, `received`: bytes passed on). */
  fail(error: unknown, state: { attempts: number; received: number }): unknown;
  signal?: AbortSignal | undefined;
}

/** The start offset of a `Content-Range: bytes <start>-<end>/<size>` header. */
export function contentRangeStart(header: string | null): number | undefined {
  const match = header ? /^bytes\s+(\d+)-\d+\/(?:\d+|\*)$/i.exec(header.trim()) : null;
  return match ? Number(match[1]) : undefined;
}

/** `first`'s bytes, resumed as `options` say when it fails part-way (see the module doc). */
export function resumingStream(first: ReadableStream<Uint8Array>, options: ResumeOptions): ReadableStream<Uint8Array> {
  let reader = first.getReader();
  let received = 0;
  let skip = 0;
  let attempt = 1;

  async function next(error: unknown): Promise<void> {
    if (options.signal?.aborted || !options.retryable(error) || attempt >= options.attempts) {
      throw options.fail(error, { attempts: attempt, received });
    }
    const delayMs = options.delayMs(attempt);
    options.onRetry?.({ attempt, offset: received, delayMs, error });
    await pause(delayMs, options.signal);
    if (options.signal?.aborted) throw options.fail(options.signal.reason, { attempts: attempt, received });
    attempt++;
    const resumed = await options.reopen(received);
    if (resumed.start > received) {
      await resumed.body.cancel().catch(() => {});
      throw options.fail(new Error(`asked for bytes from ${received} on, the registry sent them from ${resumed.start}`), { attempts: attempt, received });
    }
    reader = resumed.body.getReader();
    skip = received - resumed.start;
  }

  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        for (;;) {
          let chunk: Uint8Array;
          try {
            const { value, done } = await reader.read();
            if (done) {
              controller.close();
              return;
            }
            chunk = value;
          } catch (error) {
            await next(error);
            continue;
          }
          if (skip > 0) {
            const dropped = Math.min(skip, chunk.byteLength);
            skip -= dropped;
            chunk = chunk.subarray(dropped);
            if (chunk.byteLength === 0) continue;
          }
          received += chunk.byteLength;
          controller.enqueue(chunk);
          return;
        }
      } catch (error) {
        controller.error(error);
      }
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  });
}
