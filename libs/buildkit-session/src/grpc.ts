/**
 * gRPC over `node:http2`: length-prefixed framing, client calls (unary,
 * server-streaming, bidi) on a session we dialled ourselves, and server-side
 * calls for the session services the daemon calls back.
 */
import http2 from 'node:http2';

/** A gRPC status other than OK, with the method it came from. */
export class GrpcError extends Error {
  override name = 'GrpcError';
  readonly code: number;
  readonly method: string;
  readonly details: string;
  constructor(method: string, code: number, details: string, options?: { cause?: unknown }) {
    super(`${method}: grpc status ${code}${details ? `: ${details}` : ''}`, options);
    this.code = code;
    this.method = method;
    this.details = details;
  }
}

export const GrpcStatus = { ok: 0, cancelled: 1, unknown: 2, notFound: 5, unimplemented: 12, unavailable: 14 } as const;

export function frame(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** Splits a byte stream into gRPC messages. */
export class FrameDecoder {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer): Buffer[] {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const out: Buffer[] = [];
    while (this.buf.length >= 5) {
      const length = this.buf.readUInt32BE(1);
      if (this.buf.length < 5 + length) break;
      if (this.buf[0] !== 0) throw new Error('compressed gRPC messages are not supported');
      out.push(this.buf.subarray(5, 5 + length));
      this.buf = this.buf.subarray(5 + length);
    }
    return out;
  }
}

function decodeGrpcMessage(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** A queue that turns pushed messages into an async iterable ending with an optional error. */
class MessageQueue {
  private readonly items: Buffer[] = [];
  private waiting: (() => void) | undefined;
  private done = false;
  private error: Error | undefined;

  push(item: Buffer): void {
    this.items.push(item);
    this.wake();
  }
  close(error?: Error): void {
    if (this.done) return;
    this.done = true;
    this.error = error;
    this.wake();
  }
  get closed(): boolean {
    return this.done;
  }
  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
  async *iterate(): AsyncGenerator<Buffer> {
    for (;;) {
      const item = this.items.shift();
      if (item) {
        yield item;
        continue;
      }
      if (this.done) {
        if (this.error) throw this.error;
        return;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

export interface CallOptions {
  /** Extra request headers (gRPC metadata); arrays are sent as repeated headers. */
  metadata?: Record<string, string | string[]>;
  signal?: AbortSignal;
}

/** One client call; messages are read with `messages()`, written with `send()`. */
export class ClientCall {
  readonly method: string;
  private readonly stream: http2.ClientHttp2Stream;
  private readonly queue = new MessageQueue();
  private status: { code: number; message: string } | undefined;
  private readonly onAbort: () => void;
  private readonly signal: AbortSignal | undefined;

  constructor(session: http2.ClientHttp2Session, method: string, options: CallOptions = {}) {
    this.method = method;
    this.signal = options.signal;
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': method,
      'content-type': 'application/grpc',
      te: 'trailers',
      ...options.metadata,
    };
    this.stream = session.request(headers);
    const decoder = new FrameDecoder();
    const takeStatus = (h: http2.IncomingHttpHeaders) => {
      const code = h['grpc-status'];
      if (code !== undefined && this.status === undefined) {
        const raw = h['grpc-message'];
        this.status = { code: Number(code), message: decodeGrpcMessage(typeof raw === 'string' ? raw : '') };
      }
    };
    this.stream.on('response', takeStatus);
    this.stream.on('trailers', takeStatus);
    this.stream.on('data', (chunk: Buffer) => {
      try {
        for (const m of decoder.push(chunk)) this.queue.push(m);
      } catch (err) {
        this.queue.close(err as Error);
        this.stream.close(http2.constants.NGHTTP2_PROTOCOL_ERROR);
      }
    });
    // The server's status ends the call even while our side is still open (a trailers-only error to a bidi call).
    this.stream.on('end', () => {
      if (this.status !== undefined) this.queue.close(this.status.code === 0 ? undefined : new GrpcError(method, this.status.code, this.status.message));
    });
    this.stream.on('error', (err) => this.queue.close(new GrpcError(method, GrpcStatus.unavailable, err.message, { cause: err })));
    this.stream.on('close', () => {
      options.signal?.removeEventListener('abort', this.onAbort);
      if (this.signal?.aborted) return this.queue.close(this.abortReason());
      if (this.status === undefined) {
        return this.queue.close(new GrpcError(method, GrpcStatus.unavailable, `stream closed without a status (http2 code ${this.stream.rstCode ?? 'none'})`));
      }
      this.queue.close(this.status.code === 0 ? undefined : new GrpcError(method, this.status.code, this.status.message));
    });
    this.onAbort = () => this.cancel();
    if (options.signal?.aborted) queueMicrotask(this.onAbort);
    else options.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  private abortReason(): Error {
    const reason: unknown = this.signal?.reason;
    return reason instanceof Error ? reason : new Error(`${this.method}: cancelled`);
  }

  /** Writes one message; resolves when the stream can take more. */
  send(message: Uint8Array): Promise<void> {
    if (this.stream.writableEnded || this.stream.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      if (this.stream.write(frame(message))) resolve();
      else {
        const done = () => {
          this.stream.off('drain', done);
          this.stream.off('close', done);
          resolve();
        };
        this.stream.on('drain', done);
        this.stream.on('close', done);
      }
    });
  }

  end(): void {
    if (!this.stream.writableEnded && !this.stream.destroyed) this.stream.end();
  }

  /** Cancels the call (RST_STREAM CANCEL): the server sees a cancelled context. */
  cancel(): void {
    if (!this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  messages(): AsyncGenerator<Buffer> {
    return this.queue.iterate();
  }
}

export async function unary(session: http2.ClientHttp2Session, method: string, request: Uint8Array, options: CallOptions = {}): Promise<Buffer> {
  const call = new ClientCall(session, method, options);
  await call.send(request);
  call.end();
  let response: Buffer | undefined;
  for await (const m of call.messages()) response ??= m;
  if (response === undefined) throw new GrpcError(method, GrpcStatus.unknown, 'no response message');
  return response;
}

/** Server side of one call the daemon makes on our session. */
export class ServerCall {
  readonly method: string;
  /** Request headers as sent, repeated values kept (lower-cased names). */
  readonly metadata: Map<string, string[]>;
  private readonly stream: http2.ServerHttp2Stream;
  private readonly queue = new MessageQueue();
  private responded = false;
  private finished = false;

  constructor(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, rawHeaders: string[]) {
    this.stream = stream;
    this.method = String(headers[':path'] ?? '');
    this.metadata = new Map();
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toLowerCase();
      const list = this.metadata.get(name) ?? [];
      list.push(rawHeaders[i + 1]!);
      this.metadata.set(name, list);
    }
    const decoder = new FrameDecoder();
    stream.on('data', (chunk: Buffer) => {
      try {
        for (const m of decoder.push(chunk)) this.queue.push(m);
      } catch (err) {
        this.queue.close(err as Error);
      }
    });
    stream.on('end', () => this.queue.close());
    stream.on('close', () => this.queue.close(this.finished ? undefined : new Error(`${this.method}: the daemon closed the call`)));
    stream.on('error', () => this.queue.close(new Error(`${this.method}: stream error`)));
  }

  get closed(): boolean {
    return this.stream.destroyed || this.stream.closed;
  }

  /** All values of one metadata key, split on commas as gRPC joins them. */
  values(name: string): string[] {
    return [...(this.metadata.get(name) ?? [])];
  }

  private respond(): void {
    if (this.responded) return;
    this.responded = true;
    this.stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  }

  messages(): AsyncGenerator<Buffer> {
    return this.queue.iterate();
  }

  send(message: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.method}: the daemon closed the call`));
    this.respond();
    return new Promise((resolve, reject) => {
      if (this.stream.write(frame(message))) resolve();
      else {
        const onDrain = () => {
          this.stream.off('close', onClose);
          resolve();
        };
        const onClose = () => {
          this.stream.off('drain', onDrain);
          reject(new Error(`${this.method}: the daemon closed the call`));
        };
        this.stream.once('drain', onDrain);
        this.stream.once('close', onClose);
      }
    });
  }

  /** Ends the call with a status (0 = OK). */
  finish(code: number = GrpcStatus.ok, message = ''): void {
    if (this.finished || this.closed) return;
    this.finished = true;
    if (!this.responded && code !== 0) {
      this.responded = true;
      this.stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(code), 'grpc-message': encodeURIComponent(message) }, { endStream: true });
      return;
    }
    this.respond();
    this.stream.once('wantTrailers', () => {
      const trailers: http2.OutgoingHttpHeaders = { 'grpc-status': String(code) };
      if (message) trailers['grpc-message'] = encodeURIComponent(message);
      this.stream.sendTrailers(trailers);
    });
    this.stream.end();
  }
}
