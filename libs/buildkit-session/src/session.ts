/**
 * The client side of a BuildKit session: a gRPC *server* on a connection we
 * opened (dockerd's `POST /session`, or the `Control/Session` tunnel), serving
 * health checks, the local sources (FileSync), exports (FileSend) and registry
 * credentials (Auth).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import http2 from 'node:http2';
import { Duplex } from 'node:stream';
import type { Keychain } from '@cnb-extender/oci';
import { type ClientCall, GrpcStatus, ServerCall } from './grpc.ts';
import { sendDiffCopy } from './filesync.ts';
import { ContentService, type LayoutContentStore } from './content.ts';
import { HEALTH_SERVING, decodeBytesMessage, decodeCredentialsRequest, encodeBytesMessage, encodeCredentialsResponse, encodeHealthResponse } from './messages.ts';

export const SessionMethod = {
  health: '/grpc.health.v1.Health/Check',
  fileSync: '/moby.filesync.v1.FileSync/DiffCopy',
  fileSend: '/moby.filesync.v1.FileSend/DiffCopy',
  credentials: '/moby.filesync.v1.Auth/Credentials',
} as const;

export interface SessionOptions {
  id: string;
  name: string;
  sharedKey: string;
  /** Local directories by the name the frontend asks for (`context`, `dockerfile`). */
  dirs: Record<string, string>;
  /** Registry credentials for the daemon (the `Auth` service); omitted = anonymous. */
  keychain?: Keychain;
  /** Where a `tar` export is written (FileSend). */
  exportFile?: string;
  /**
   * Content stores the daemon may read or write by store id: `oci:<name>` for
   * `oci-layout://` named contexts, `export` for an `oci` export without tar,
   * `local:<dir>` for a local cache.
   */
  contentStores?: Record<string, LayoutContentStore>;
  signal?: AbortSignal;
}

export interface SessionStats {
  healthChecks: number;
  diffCopies: { dir: string; entries: number; bytes: number }[];
  exportedBytes: number;
}

export class BuildSession {
  readonly options: SessionOptions;
  readonly stats: SessionStats = { healthChecks: 0, diffCopies: [], exportedBytes: 0 };
  private readonly server: http2.Http2Server;
  private readonly connections: Duplex[] = [];
  private readonly active = new Set<Promise<void>>();
  private readonly openFiles = new Set<WriteStream>();
  private readonly content: ContentService | undefined;
  /** The first error a session service hit (surfaced by the solve). */
  error: Error | undefined;

  constructor(options: SessionOptions) {
    this.options = options;
    this.content = options.contentStores && Object.keys(options.contentStores).length > 0 ? new ContentService(options.contentStores) : undefined;
    this.server = http2.createServer();
    this.server.on('stream', (stream, headers, _flags, rawHeaders) => {
      const call = new ServerCall(stream, headers, rawHeaders);
      const work = this.handle(call).catch((err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        if (call.method !== SessionMethod.health) this.error ??= error;
        call.finish(GrpcStatus.unknown, error.message);
      });
      this.active.add(work);
      void work.finally(() => this.active.delete(work));
    });
    this.server.on('sessionError', () => undefined);
  }

  /** The methods this session serves, as advertised to the daemon. */
  methods(): string[] {
    const methods: string[] = [SessionMethod.health, SessionMethod.fileSync];
    if (this.options.exportFile) methods.push(SessionMethod.fileSend);
    if (this.options.keychain) methods.push(SessionMethod.credentials);
    if (this.content) methods.push(...ContentService.methods());
    return methods;
  }

  /** Session headers (HTTP header names; gRPC metadata uses them lower-cased). */
  headers(): [string, string][] {
    return [
      ['X-Docker-Expose-Session-Uuid', this.options.id],
      ['X-Docker-Expose-Session-Name', this.options.name],
      ['X-Docker-Expose-Session-Sharedkey', this.options.sharedKey],
      ...this.methods().map((m): [string, string] => ['X-Docker-Expose-Session-Grpc-Method', m]),
    ];
  }

  /** Serves the session on a connection where the daemon is the HTTP/2 client. */
  attach(connection: Duplex): void {
    this.connections.push(connection);
    connection.on('error', () => undefined);
    this.server.emit('connection', connection);
  }

  private async handle(call: ServerCall): Promise<void> {
    switch (call.method) {
      case SessionMethod.health:
        for await (const _ of call.messages()) break;
        this.stats.healthChecks++;
        await call.send(encodeHealthResponse(HEALTH_SERVING));
        call.finish();
        return;
      case SessionMethod.fileSync: {
        const dir = call.values('dir-name')[0] ?? '';
        const root = this.options.dirs[dir];
        if (root === undefined) {
          call.finish(GrpcStatus.notFound, `no access allowed to dir "${dir}"`);
          return;
        }
        const result = await sendDiffCopy(
          root,
          { includePatterns: call.values('include-patterns'), excludePatterns: call.values('exclude-patterns'), followPaths: call.values('followpaths') },
          call,
          this.options.signal,
        );
        this.stats.diffCopies.push({ dir, ...result });
        call.finish();
        return;
      }
      case SessionMethod.fileSend: {
        const target = this.options.exportFile;
        if (!target) {
          call.finish(GrpcStatus.unimplemented, 'no export requested');
          return;
        }
        const out = createWriteStream(target);
        this.openFiles.add(out);
        try {
          for await (const message of call.messages()) {
            const data = decodeBytesMessage(message);
            this.stats.exportedBytes += data.length;
            if (!out.write(data)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
          }
          await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
        } finally {
          this.openFiles.delete(out);
          out.destroy();
        }
        call.finish();
        return;
      }
      case SessionMethod.credentials: {
        let host = '';
        for await (const m of call.messages()) {
          host = decodeCredentialsRequest(m).host;
          break;
        }
        const credential = await this.options.keychain?.resolve(host);
        if (credential?.kind === 'basic') await call.send(encodeCredentialsResponse(credential.username, credential.password));
        else if (credential?.kind === 'identity') await call.send(encodeCredentialsResponse('', credential.token));
        else await call.send(encodeCredentialsResponse('', ''));
        call.finish();
        return;
      }
      default:
        if (this.content && ContentService.methods().includes(call.method)) return this.content.handle(call);
        call.finish(GrpcStatus.unimplemented, `unknown method ${call.method}`);
    }
  }

  /** Closes every connection of the session and waits for its services to stop. */
  async close(): Promise<void> {
    for (const c of this.connections) c.destroy();
    for (const f of this.openFiles) f.destroy();
    await Promise.allSettled([...this.active]);
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A byte stream carried inside `Control/Session` (BytesMessage frames), so the
 * session's HTTP/2 connection can be served through a standalone buildkitd.
 */
export function tunnelDuplex(call: ClientCall): Duplex {
  const duplex = new Duplex({
    // Writes queued while a message is in flight go out together as one message.
    writableHighWaterMark: 1 << 20,
    write(chunk: Buffer, _encoding, callback) {
      call.send(encodeBytesMessage(chunk)).then(() => callback(), callback);
    },
    writev(chunks, callback) {
      call.send(encodeBytesMessage(Buffer.concat(chunks.map((c) => c.chunk as Buffer)))).then(() => callback(), callback);
    },
    final(callback) {
      call.end();
      callback();
    },
    read() {
      // Pushed as messages arrive.
    },
    destroy(err, callback) {
      call.cancel();
      callback(err);
    },
  });
  void (async () => {
    try {
      for await (const m of call.messages()) duplex.push(decodeBytesMessage(m));
      duplex.push(null);
    } catch (err) {
      duplex.destroy(err as Error);
    }
  })();
  return duplex;
}
