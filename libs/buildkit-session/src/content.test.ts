/**
 * The session's content service over a real HTTP/2 connection, this test
 * playing the daemon the way containerd's content proxy does: Info and ranged
 * Read on a layout, and the STAT → WRITE → COMMIT exchange of a write, with
 * AlreadyExists for blobs the store has and nothing left by a bad write.
 */
import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ContentMethod, LayoutContentStore, STORE_ID_HEADER } from './content.ts';
import { ClientCall, GrpcError, unary } from './grpc.ts';
import { ProtoWriter, asNumber, asString, fields } from './proto.ts';
import { BuildSession } from './session.ts';

const sha = (data: Buffer) => `sha256:${createHash('sha256').update(data).digest('hex')}`;

let dir: string;
let server: net.Server;
let session: BuildSession;
let daemon: http2.ClientHttp2Session;
let base: LayoutContentStore;
let exportStore: LayoutContentStore;
const blob = Buffer.from('x'.repeat(3 << 20) + 'tail');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-content-'));
  await mkdir(join(dir, 'base', 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dir, 'base', 'blobs', 'sha256', sha(blob).slice(7)), blob);
  base = new LayoutContentStore({ dirs: [join(dir, 'base')] });
  exportStore = new LayoutContentStore({ dirs: [join(dir, 'export'), join(dir, 'base')], writable: true });
  session = new BuildSession({ id: 'sid', name: 'test', sharedKey: 'k', dirs: {}, contentStores: { 'oci:base': base, export: exportStore } });
  server = net.createServer((socket) => session.attach(socket));
  const path = join(dir, 'session.sock');
  await new Promise<void>((resolve) => server.listen(path, resolve));
  daemon = http2.connect('http://session', { createConnection: () => net.connect({ path }) });
});

afterAll(async () => {
  daemon.close();
  await session.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(dir, { recursive: true, force: true });
});

const store = (id: string) => ({ metadata: { [STORE_ID_HEADER]: id } });

async function read(id: string, digest: string, offset: number, size: number): Promise<Buffer> {
  const call = new ClientCall(daemon, ContentMethod.read, store(id));
  await call.send(new ProtoWriter().string(1, digest).int(2, offset).int(3, size).finish());
  call.end();
  const parts: Buffer[] = [];
  for await (const m of call.messages()) {
    for (const f of fields(m)) if (f.field === 2 && f.wire === 2) parts.push(Buffer.from(f.value));
  }
  return Buffer.concat(parts);
}

/** One write exchange; returns the replies' offsets and digest. */
async function write(id: string, data: Buffer, expected: string): Promise<{ offsets: number[]; digest: string }> {
  const call = new ClientCall(daemon, ContentMethod.write, store(id));
  const replies = call.messages();
  const exchange = async (message: ProtoWriter) => {
    await call.send(message.finish());
    const next = await replies.next();
    if (next.done) throw new Error('write stream ended early');
    return new Map([...fields(next.value)].map((f) => [f.field, f]));
  };
  const offsets: number[] = [];
  await exchange(new ProtoWriter().int(1, 0).string(2, `ref-${expected}`).int(3, data.length).string(4, expected));
  for (let at = 0; at < data.length; at += 1 << 20) {
    const reply = await exchange(new ProtoWriter().int(1, 1).int(5, at).bytes(6, data.subarray(at, at + (1 << 20))));
    offsets.push(asNumber(reply.get(4)!));
  }
  const done = await exchange(new ProtoWriter().int(1, 2).int(3, data.length).int(5, data.length).string(4, expected));
  call.end();
  for await (const _ of replies);
  return { offsets, digest: asString(done.get(6)!) };
}

describe('content service', () => {
  it('advertises the content methods only when it has stores', () => {
    expect(session.methods()).toEqual(expect.arrayContaining(Object.values(ContentMethod)));
    expect(new BuildSession({ id: 'a', name: 'b', sharedKey: 'c', dirs: {} }).methods().some((m) => m.includes('content'))).toBe(false);
  });

  it('answers Info with the size, and NotFound for what the store does not have', async () => {
    const reply = await unary(daemon, ContentMethod.info, new ProtoWriter().string(1, sha(blob)).finish(), store('oci:base'));
    const info = [...fields(reply)][0]!;
    const got = new Map([...fields(info.value as Buffer)].map((f) => [f.field, f]));
    expect(asString(got.get(1)!)).toBe(sha(blob));
    expect(asNumber(got.get(2)!)).toBe(blob.length);
    await expect(unary(daemon, ContentMethod.info, new ProtoWriter().string(1, sha(Buffer.from('nope'))).finish(), store('oci:base'))).rejects.toSatisfy(
      (e: unknown) => e instanceof GrpcError && e.code === 5 && /not found/.test(e.details),
    );
  });

  it('serves ranged reads in chunks, and the whole blob for size 0', async () => {
    expect(await read('oci:base', sha(blob), (3 << 20) - 2, 6)).toEqual(Buffer.from('xxtail'));
    expect((await read('oci:base', sha(blob), 0, 0)).equals(blob)).toBe(true);
  });

  it('refuses calls without a store id, for an unknown store, and writes to a read-only store', async () => {
    await expect(unary(daemon, ContentMethod.info, new ProtoWriter().string(1, sha(blob)).finish())).rejects.toThrow(/lacks metadata "buildkit-attachable-store-id"/);
    await expect(unary(daemon, ContentMethod.info, new ProtoWriter().string(1, sha(blob)).finish(), store('oci:other'))).rejects.toThrow(/unknown store oci:other/);
    await expect(write('oci:base', Buffer.from('new'), sha(Buffer.from('new')))).rejects.toThrow(/read-only/);
  });

  it('writes a blob through STAT, WRITE and COMMIT, checked against its digest', async () => {
    const data = Buffer.alloc((2 << 20) + 17, 7);
    const result = await write('export', data, sha(data));
    expect(result.offsets).toEqual([1 << 20, 2 << 20, (2 << 20) + 17]);
    expect(result.digest).toBe(sha(data));
    expect((await readFile(join(dir, 'export', 'blobs', 'sha256', sha(data).slice(7)))).equals(data)).toBe(true);
    expect(await readdir(join(dir, 'export', 'ingest'))).toEqual([]);
  });

  it('answers AlreadyExists for a blob any of its directories has, so it never crosses the session again', async () => {
    await expect(write('export', blob, sha(blob))).rejects.toSatisfy((e: unknown) => e instanceof GrpcError && e.code === 6);
    expect(exportStore.stats.skipped).toContain(sha(blob));
  });

  it('keeps nothing of a write whose content does not match its digest', async () => {
    const claimed = sha(Buffer.from('something else'));
    await expect(write('export', Buffer.from('tampered'), claimed)).rejects.toThrow(/content has digest sha256:[a-f0-9]+, sha256:[a-f0-9]+ expected/);
    expect(await readdir(join(dir, 'export', 'ingest'))).toEqual([]);
    await expect(readFile(join(dir, 'export', 'blobs', 'sha256', claimed.slice(7)))).rejects.toThrow(/ENOENT/);
  });
});
