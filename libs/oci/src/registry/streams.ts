/** Small stream helpers for blob bodies. */
import { createHash } from 'node:crypto';
import { parseDigest, type Digest } from '../digest.ts';

/** What a blob's bytes may be handed to us as. */
export type BlobData = Uint8Array | ReadableStream<Uint8Array> | AsyncIterable<Uint8Array>;

export function toWebStream(data: BlobData): ReadableStream<Uint8Array> {
  if (data instanceof Uint8Array) {
    return new ReadableStream({
      start(controller) {
        if (data.byteLength > 0) controller.enqueue(data);
        controller.close();
      },
    });
  }
  if (data instanceof ReadableStream) return data;
  const iterator = (data as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await iterator.next();
      if (done) controller.close();
      else controller.enqueue(typeof value === 'string' ? new TextEncoder().encode(value) : value);
    },
    async cancel(reason) {
      await iterator.return?.(reason);
    },
  });
}

/**
 * A stream pulled from `stream`'s reader: `step` handles each read (a chunk, or the end). A
 * failed read or step errors the stream; `onStop` runs then and when the stream is cancelled.
 */
type PullStep = (
  read: Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>,
  controller: ReadableStreamDefaultController<Uint8Array>,
  reader: ReadableStreamDefaultReader<Uint8Array>,
) => void | Promise<void>;

function pullThrough(stream: ReadableStream<Uint8Array>, step: PullStep, onStop?: () => void): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        await step(await reader.read(), controller, reader);
      } catch (error) {
        onStop?.();
        controller.error(error);
      }
    },
    async cancel(reason) {
      onStop?.();
      await reader.cancel(reason);
    },
  });
}

/** Pass chunks through, calling `onChunk` for each (used to reset inactivity timers). */
export function tap(stream: ReadableStream<Uint8Array>, onChunk: (chunk: Uint8Array) => void, onEnd?: () => void): ReadableStream<Uint8Array> {
  return pullThrough(
    stream,
    ({ value, done }, controller) => {
      if (done) {
        onEnd?.();
        controller.close();
        return;
      }
      onChunk(value);
      controller.enqueue(value);
    },
    onEnd,
  );
}

/**
 * A stream that yields the same bytes and fails at the end (instead of closing)
 * when their digest or size differ from what was expected.
 */
export function verifyingStream(
  stream: ReadableStream<Uint8Array>,
  expected: { digest: Digest; size?: number },
  onMismatch: (actual: { digest: Digest; size: number }) => Error,
): ReadableStream<Uint8Array> {
  const { algorithm } = parseDigest(expected.digest);
  const hash = createHash(algorithm);
  let size = 0;
  return pullThrough(stream, async ({ value, done }, controller, reader) => {
    if (done) {
      const digest = `${algorithm}:${hash.digest('hex')}` as Digest;
      if (digest !== expected.digest || (expected.size !== undefined && size !== expected.size)) {
        controller.error(onMismatch({ digest, size }));
      } else {
        controller.close();
      }
      return;
    }
    size += value.byteLength;
    if (expected.size !== undefined && size > expected.size) {
      await reader.cancel();
      controller.error(onMismatch({ digest: expected.digest, size }));
      return;
    }
    hash.update(value);
    controller.enqueue(value);
  });
}

/** Read a whole stream, failing once more than `limit` bytes arrive. */
export async function readAll(stream: ReadableStream<Uint8Array> | null, limit = Number.POSITIVE_INFINITY): Promise<Uint8Array> {
  if (!stream) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel();
      throw new RangeError(`more than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}

/** Split a stream into chunks of exactly `size` bytes (the last may be shorter). */
export async function* rechunk(stream: ReadableStream<Uint8Array>, size: number): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      pending.push(value);
      pendingBytes += value.byteLength;
      while (pendingBytes >= size) {
        const all = Buffer.concat(pending);
        yield all.subarray(0, size);
        const rest = all.subarray(size);
        pending = rest.byteLength ? [rest] : [];
        pendingBytes = rest.byteLength;
      }
    }
    if (pendingBytes > 0) yield Buffer.concat(pending);
  } finally {
    if (!finished) await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** The same stream, with any error it fails with replaced by `map(error)`. */
export function mapStreamErrors(stream: ReadableStream<Uint8Array>, map: (error: unknown) => unknown): ReadableStream<Uint8Array> {
  const reader = stream.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (error) {
        controller.error(map(error));
      }
    },
    async cancel(reason) {
      await reader.cancel(reason);
    },
  });
}

/**
 * Opens a blob's content for one upload attempt and remembers a failure of the
 * content's own source (a file that cannot be read, a download that gave up),
 * told apart from a failure of the upload itself.
 */
export function watchedSource(content: Uint8Array | (() => BlobData | Promise<BlobData>)): {
  open(): Promise<ReadableStream<Uint8Array>>;
  failure(): { error: unknown } | undefined;
} {
  let failed: { error: unknown } | undefined;
  return {
    async open() {
      try {
        const data = typeof content === 'function' ? await content() : content;
        return mapStreamErrors(toWebStream(data), (error) => ((failed ??= { error }), error));
      } catch (error) {
        failed ??= { error };
        throw error;
      }
    },
    failure: () => failed,
  };
}
