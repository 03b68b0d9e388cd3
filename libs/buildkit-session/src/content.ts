/**
 * containerd's content service (`containerd.services.content.v1.Content`) on
 * the session: the daemon reads an OCI layout we hold (`oci-layout://` named
 * contexts, store id `oci:<name>`), writes an `oci` export into one
 * (`export`), and reads or writes a local cache (`local:<dir>`). Which store a
 * call is for travels in the `buildkit-attachable-store-id` metadata.
 *
 * Stores are OCI-layout blob directories (`blobs/<alg>/<hex>`). Writes go to an
 * ingest file and are renamed into place only after size and digest check, so
 * an interrupted export never leaves a blob that lies about its name.
 */
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { mkdir, open, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { GrpcStatus, type ServerCall } from './grpc.ts';
import { ProtoWriter, asNumber, asString, fields } from './proto.ts';

export const ContentMethod = {
  info: '/containerd.services.content.v1.Content/Info',
  read: '/containerd.services.content.v1.Content/Read',
  write: '/containerd.services.content.v1.Content/Write',
  abort: '/containerd.services.content.v1.Content/Abort',
} as const;

/** The metadata key that names the store a call is for. */
export const STORE_ID_HEADER = 'buildkit-attachable-store-id';

const DIGEST = /^(sha256|sha512):([a-f0-9]{64}|[a-f0-9]{128})$/;
const READ_CHUNK = 1 << 20;

/** A gRPC status the content service answers with (containerd's errdefs codes). */
export class ContentError extends Error {
  override name = 'ContentError';
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

const Code = { invalidArgument: 3, notFound: GrpcStatus.notFound, alreadyExists: 6, failedPrecondition: 9 } as const;

export interface ContentInfo {
  digest: string;
  size: number;
  modified: Date;
}

export interface ContentStoreOptions {
  /** Blob directories read in order; the first one is where writes land (when writable). */
  dirs: readonly string[];
  writable?: boolean;
}

/** Written blobs, for callers that want to know what crossed the session. */
export interface ContentStoreStats {
  written: { digest: string; size: number }[];
  skipped: string[];
  readBytes: number;
}

/** One content store backed by OCI-layout blob directories. */
export class LayoutContentStore {
  readonly dirs: readonly string[];
  readonly writable: boolean;
  readonly stats: ContentStoreStats = { written: [], skipped: [], readBytes: 0 };

  constructor(options: ContentStoreOptions) {
    if (options.dirs.length === 0) throw new Error('a content store needs at least one directory');
    this.dirs = options.dirs;
    this.writable = options.writable ?? false;
  }

  static checkDigest(digest: string): string {
    if (!DIGEST.test(digest)) throw new ContentError(Code.invalidArgument, `${JSON.stringify(digest)} is not a digest`);
    return digest;
  }

  private blobPath(dir: string, digest: string): string {
    const [algorithm, hex] = LayoutContentStore.checkDigest(digest).split(':') as [string, string];
    return join(dir, 'blobs', algorithm, hex);
  }

  /** Where the blob is, or undefined. */
  async find(digest: string): Promise<{ path: string; info: ContentInfo } | undefined> {
    for (const dir of this.dirs) {
      const path = this.blobPath(dir, digest);
      const st = await stat(path).catch(() => undefined);
      if (st?.isFile()) return { path, info: { digest, size: st.size, modified: st.mtime } };
    }
    return undefined;
  }

  async info(digest: string): Promise<ContentInfo> {
    const found = await this.find(digest);
    if (!found) throw new ContentError(Code.notFound, `content digest ${digest}: not found`);
    return found.info;
  }

  /** Starts a write; refuses (AlreadyExists) a blob the store already has. */
  async ingest(ref: string, expected: string, total: number): Promise<ContentIngest> {
    if (!this.writable) throw new ContentError(Code.failedPrecondition, 'this content store is read-only');
    if (expected !== '' && (await this.find(LayoutContentStore.checkDigest(expected)))) {
      this.stats.skipped.push(expected);
      throw new ContentError(Code.alreadyExists, `content ${expected}: already exists`);
    }
    const dir = join(this.dirs[0]!, 'ingest');
    await mkdir(dir, { recursive: true });
    const path = join(dir, randomBytes(8).toString('hex'));
    return new ContentIngest(this, ref, expected, total, path, await open(path, 'wx'));
  }

  /** Moves a checked ingest file to its blob path. */
  async commitFile(path: string, digest: string, size: number): Promise<void> {
    const target = this.blobPath(this.dirs[0]!, digest);
    await mkdir(join(target, '..'), { recursive: true });
    await rename(path, target);
    this.stats.written.push({ digest, size });
  }
}

/** One blob being written by the daemon. */
export class ContentIngest {
  readonly ref: string;
  readonly started = new Date();
  offset = 0;
  total: number;
  private expected: string;
  private hash: Hash;
  private readonly store: LayoutContentStore;
  private readonly path: string;
  private file: FileHandle | undefined;

  constructor(store: LayoutContentStore, ref: string, expected: string, total: number, path: string, file: FileHandle) {
    this.store = store;
    this.ref = ref;
    this.expected = expected;
    this.total = total;
    this.path = path;
    this.file = file;
    this.hash = createHash(expected.startsWith('sha512:') ? 'sha512' : 'sha256');
  }

  async write(offset: number, data: Buffer): Promise<void> {
    if (!this.file) throw new ContentError(Code.failedPrecondition, `write of ${this.ref} after it ended`);
    if (offset !== this.offset) throw new ContentError(Code.invalidArgument, `write of ${this.ref} at offset ${offset}, expected ${this.offset}`);
    let written = 0;
    while (written < data.length) written += (await this.file.write(data, written, data.length - written, this.offset + written)).bytesWritten;
    this.hash.update(data);
    this.offset += data.length;
  }

  async commit(total: number, expected: string): Promise<string> {
    if (expected !== '') this.expected = LayoutContentStore.checkDigest(expected);
    if (total > 0) this.total = total;
    if (this.total > 0 && this.offset !== this.total) {
      throw new ContentError(Code.failedPrecondition, `${this.ref}: ${this.offset} bytes written, ${this.total} expected`);
    }
    const algorithm = this.expected.startsWith('sha512:') ? 'sha512' : 'sha256';
    const digest = `${algorithm}:${this.hash.digest('hex')}`;
    if (this.expected !== '' && digest !== this.expected) {
      throw new ContentError(Code.failedPrecondition, `${this.ref}: content has digest ${digest}, ${this.expected} expected`);
    }
    await this.file?.close();
    this.file = undefined;
    await this.store.commitFile(this.path, digest, this.offset);
    return digest;
  }

  /** Drops an uncommitted write. */
  async abort(): Promise<void> {
    await this.file?.close().catch(() => undefined);
    this.file = undefined;
    await rm(this.path, { force: true });
  }
}

function timestamp(date: Date): ProtoWriter {
  const ms = date.getTime();
  return new ProtoWriter().int(1, Math.floor(ms / 1000)).int(2, (ms % 1000) * 1_000_000);
}

function decode(buf: Buffer): Map<number, { s: string; n: number; b: Buffer }> {
  const out = new Map<number, { s: string; n: number; b: Buffer }>();
  for (const f of fields(buf)) out.set(f.field, { s: asString(f), n: asNumber(f), b: f.wire === 2 ? f.value : Buffer.alloc(0) });
  return out;
}

/** The content service over a set of stores keyed by store id. */
export class ContentService {
  readonly stores: ReadonlyMap<string, LayoutContentStore>;

  constructor(stores: Record<string, LayoutContentStore>) {
    this.stores = new Map(Object.entries(stores));
  }

  static methods(): string[] {
    return Object.values(ContentMethod);
  }

  private store(call: ServerCall): LayoutContentStore {
    const id = call.values(STORE_ID_HEADER)[0];
    if (id === undefined) throw new ContentError(Code.invalidArgument, `request lacks metadata "${STORE_ID_HEADER}"`);
    const store = this.stores.get(id);
    if (!store) throw new ContentError(Code.notFound, `unknown store ${id}`);
    return store;
  }

  /** Serves one call; content errors become their gRPC status. */
  async handle(call: ServerCall): Promise<void> {
    try {
      const store = this.store(call);
      switch (call.method) {
        case ContentMethod.info:
          return await this.info(call, store);
        case ContentMethod.read:
          return await this.read(call, store);
        case ContentMethod.write:
          return await this.write(call, store);
        case ContentMethod.abort:
          // Writes are tied to their stream; an abandoned ingest is removed when its stream ends.
          for await (const _ of call.messages()) break;
          await call.send(Buffer.alloc(0));
          call.finish();
          return;
        default:
          call.finish(GrpcStatus.unimplemented, `unknown method ${call.method}`);
      }
    } catch (err) {
      if (err instanceof ContentError) {
        call.finish(err.code, err.message);
        return;
      }
      // The daemon cancels a Read once it has the bytes it asked for: not a failure of the session.
      if (call.closed) return;
      throw err;
    }
  }

  private async info(call: ServerCall, store: LayoutContentStore): Promise<void> {
    let digest = '';
    for await (const m of call.messages()) {
      digest = decode(m).get(1)?.s ?? '';
      break;
    }
    const info = await store.info(LayoutContentStore.checkDigest(digest));
    const message = new ProtoWriter().string(1, info.digest).int(2, info.size).message(3, timestamp(info.modified)).message(4, timestamp(info.modified));
    await call.send(new ProtoWriter().message(1, message, true).finish());
    call.finish();
  }

  private async read(call: ServerCall, store: LayoutContentStore): Promise<void> {
    let request = new Map<number, { s: string; n: number; b: Buffer }>();
    for await (const m of call.messages()) {
      request = decode(m);
      break;
    }
    const digest = LayoutContentStore.checkDigest(request.get(1)?.s ?? '');
    const found = await store.find(digest);
    if (!found) throw new ContentError(Code.notFound, `content digest ${digest}: not found`);
    const offset = request.get(2)?.n ?? 0;
    const wanted = request.get(3)?.n ?? 0;
    if (offset < 0 || offset > found.info.size) throw new ContentError(Code.invalidArgument, `offset ${offset} is outside ${digest} (${found.info.size} bytes)`);
    const end = wanted > 0 ? Math.min(found.info.size, offset + wanted) : found.info.size;
    const file = await open(found.path, 'r');
    try {
      let position = offset;
      while (position < end && !call.closed) {
        const chunk = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - position));
        const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
        if (bytesRead === 0) break;
        await call.send(new ProtoWriter().int(1, position).bytes(2, chunk.subarray(0, bytesRead)).finish());
        store.stats.readBytes += bytesRead;
        position += bytesRead;
      }
    } finally {
      await file.close();
    }
    call.finish();
  }

  private async write(call: ServerCall, store: LayoutContentStore): Promise<void> {
    let ingest: ContentIngest | undefined;
    let committed = false;
    try {
      for await (const m of call.messages()) {
        const req = decode(m);
        const action = req.get(1)?.n ?? 0;
        if (!ingest) {
          const ref = req.get(2)?.s ?? '';
          if (ref === '') throw new ContentError(Code.invalidArgument, 'first write message must carry a ref');
          ingest = await store.ingest(ref, req.get(4)?.s ?? '', req.get(3)?.n ?? 0);
        }
        if ((req.get(3)?.n ?? 0) > 0) ingest.total = req.get(3)!.n;
        let digest = '';
        if (action === 1 || action === 2) {
          const data = req.get(6)?.b ?? Buffer.alloc(0);
          if (data.length > 0) await ingest.write(req.get(5)?.n ?? ingest.offset, data);
          if (action === 2) {
            digest = await ingest.commit(req.get(3)?.n ?? 0, req.get(4)?.s ?? '');
            committed = true;
          }
        } else if (action !== 0) {
          throw new ContentError(Code.invalidArgument, `unknown write action ${action}`);
        }
        const reply = new ProtoWriter()
          .int(1, action)
          .message(2, timestamp(ingest.started))
          .message(3, timestamp(new Date()))
          .int(4, ingest.offset)
          .int(5, ingest.total)
          .string(6, digest);
        await call.send(reply.finish());
        if (committed) break;
      }
    } finally {
      if (!committed) await ingest?.abort();
    }
    call.finish();
  }
}
