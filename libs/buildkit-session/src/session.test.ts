/**
 * The session's gRPC server over a real HTTP/2 connection, with this test as
 * the daemon's side: health checks, Auth/Credentials from a keychain, unknown
 * methods, and the advertised method list.
 */
import http2 from 'node:http2';
import net from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { staticKeychain } from '@cnb-extender/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GrpcError, unary } from './grpc.ts';
import { ProtoWriter, asNumber, asString, fields } from './proto.ts';
import { BuildSession, SessionMethod } from './session.ts';

let dir: string;
let server: net.Server;
let session: BuildSession;
let daemon: http2.ClientHttp2Session;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-session-'));
  session = new BuildSession({
    id: 'sid',
    name: 'test',
    sharedKey: 'k',
    dirs: { context: dir },
    keychain: staticKeychain({ 'registry.example:5000': { kind: 'basic', username: 'user', password: 'secret' } }),
  });
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

describe('session server', () => {
  it('advertises exactly what it serves', () => {
    expect(session.methods()).toEqual([SessionMethod.health, SessionMethod.fileSync, SessionMethod.credentials]);
    expect(session.headers().filter(([k]) => k === 'X-Docker-Expose-Session-Grpc-Method')).toHaveLength(3);
  });

  it('answers health checks with SERVING', async () => {
    const reply = await unary(daemon, SessionMethod.health, Buffer.alloc(0));
    expect([...fields(reply)].map(asNumber)).toEqual([1]);
    expect(session.stats.healthChecks).toBe(1);
  });

  it('serves registry credentials from the keychain, and empty ones (anonymous) for other hosts', async () => {
    const ask = async (host: string) => [...fields(await unary(daemon, SessionMethod.credentials, new ProtoWriter().string(1, host).finish()))].map((f) => [f.field, asString(f)]);
    expect(await ask('registry.example:5000')).toEqual([
      [1, 'user'],
      [2, 'secret'],
    ]);
    expect(await ask('other.example')).toEqual([]);
  });

  it('refuses unknown methods and directories it was not given', async () => {
    await expect(unary(daemon, '/moby.sshforward.v1.SSH/ForwardAgent', Buffer.alloc(0))).rejects.toSatisfy((e: unknown) => e instanceof GrpcError && e.code === 12);
    await expect(unary(daemon, SessionMethod.fileSync, Buffer.alloc(0), { metadata: { 'dir-name': 'elsewhere' } })).rejects.toThrow(/no access allowed to dir "elsewhere"/);
  });
});
