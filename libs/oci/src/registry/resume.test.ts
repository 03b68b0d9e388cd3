import { describe, expect, it } from 'vitest';
import { readAll, toWebStream } from './streams.ts';
import { contentRangeStart, resumingStream, type ResumeOptions } from './resume.ts';

const content = new Uint8Array(Array.from({ length: 100 }, (_, i) => i));

/** `content` from `start`, failing with a reset after `cut` bytes when given. */
function body(start: number, cut?: number): ReadableStream<Uint8Array> {
  const bytes = content.subarray(start, cut === undefined ? undefined : start + cut);
  let sent = false;
  return new ReadableStream({
    pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(bytes.slice());
        return;
      }
      if (cut === undefined) controller.close();
      else controller.error(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }));
    },
  });
}

function options(over: Partial<ResumeOptions> & Pick<ResumeOptions, 'reopen'>): ResumeOptions & { asked: number[] } {
  const asked: number[] = [];
  const reopen = over.reopen;
  return {
    attempts: 5,
    delayMs: () => 0,
    retryable: (error) => (error as { code?: string }).code === 'ECONNRESET',
    fail: (error, state) => new Error(`gave up after ${state.attempts} attempts, ${state.received} bytes`, { cause: error }),
    ...over,
    reopen: (offset) => (asked.push(offset), reopen(offset)),
    asked,
  };
}

describe('resumingStream', () => {
  it('carries on from where the body broke, with ranges that start there', async () => {
    const cuts = [30, 30];
    const o = options({ reopen: async (offset) => ({ body: body(offset, cuts.shift()), start: offset }) });
    expect(Buffer.from(await readAll(resumingStream(body(0, 25), o)))).toEqual(Buffer.from(content));
    expect(o.asked).toEqual([25, 55, 85]);
  });

  it('drops what it already passed on when the content starts over (200), or starts before the offset', async () => {
    const o = options({ reopen: async (offset) => (offset === 40 ? { body: body(0), start: 0 } : { body: body(offset - 10), start: offset - 10 }) });
    expect(Buffer.from(await readAll(resumingStream(body(0, 40), o)))).toEqual(Buffer.from(content));
    const again = options({ reopen: async (offset) => ({ body: body(offset - 10), start: offset - 10 }) });
    expect(Buffer.from(await readAll(resumingStream(body(0, 40), again)))).toEqual(Buffer.from(content));
  });

  it('gives up after the attempts, saying how far it got', async () => {
    const o = options({ attempts: 3, reopen: async (offset) => ({ body: body(offset, 10), start: offset }) });
    await expect(readAll(resumingStream(body(0, 10), o))).rejects.toThrow('gave up after 3 attempts, 30 bytes');
  });

  it('does not resume failures that are not retryable, nor a range that starts too late', async () => {
    const fatal = new ReadableStream<Uint8Array>({ pull: (c) => c.error(new Error('disk full')) });
    const o = options({ reopen: async (offset) => ({ body: body(offset), start: offset }) });
    await expect(readAll(resumingStream(fatal, o))).rejects.toThrow('gave up after 1 attempts, 0 bytes');
    expect(o.asked).toEqual([]);
    const late = options({ reopen: async (offset) => ({ body: body(offset + 5), start: offset + 5 }) });
    const error = await readAll(resumingStream(body(0, 20), late)).catch((e) => e);
    expect(error.cause.message).toBe('asked for bytes from 20 on, the registry sent them from 25');
  });

  it('stops before resuming when the signal is aborted', async () => {
    const controller = new AbortController();
    const o = options({ signal: controller.signal, onRetry: () => controller.abort(), reopen: async (offset) => ({ body: body(offset), start: offset }) });
    await expect(readAll(resumingStream(body(0, 20), o))).rejects.toThrow('gave up after 1 attempts, 20 bytes');
    expect(o.asked).toEqual([]);
  });

  it('passes a cancel on to the body it reads', async () => {
    let cancelled: unknown;
    const source = new ReadableStream<Uint8Array>({ pull: (c) => c.enqueue(new Uint8Array(1)), cancel: (reason) => void (cancelled = reason) });
    const stream = resumingStream(source, options({ reopen: async () => ({ body: toWebStream(new Uint8Array(0)), start: 0 }) }));
    await stream.getReader().cancel('enough');
    expect(cancelled).toBe('enough');
  });

  it('reads Content-Range', () => {
    expect(contentRangeStart('bytes 100-199/200')).toBe(100);
    expect(contentRangeStart('bytes 0-9/*')).toBe(0);
    expect(contentRangeStart('bytes */200')).toBeUndefined();
    expect(contentRangeStart(null)).toBeUndefined();
  });
});
