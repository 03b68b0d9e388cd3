/**
 * A loopback stand-in for a standalone buildkitd:
 * listens on a unix socket, 127.0.0.1 TCP, or TLS with client-certificate
 * verification, and pipes each connection into dockerd's `POST /grpc` upgrade,
 * so the client speaks to it exactly as to buildkitd.
 */
import net from 'node:net';
import tls from 'node:tls';
import { readFile } from 'node:fs/promises';
import { listenForwarder } from './tls.ts';

export interface GrpcForwarder {
  address: string;
  /** Connections accepted so far (proves traffic went through it). */
  connections: number;
  /** TLS handshakes refused (no or wrong client certificate). */
  refused: number;
  close(): Promise<void>;
}

export type GrpcListenOn = { kind: 'unix'; path: string } | { kind: 'tcp' } | { kind: 'tls'; ca: Buffer; cert: Buffer; key: Buffer };

function upgradeToGrpc(dockerSocket: string, client: net.Socket): void {
  const upstream = net.connect({ path: dockerSocket });
  client.pause();
  upstream.write('POST /grpc HTTP/1.1\r\nHost: docker\r\nConnection: Upgrade\r\nUpgrade: h2c\r\nContent-Length: 0\r\n\r\n');
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer) => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    upstream.off('data', onData);
    upstream.pause();
    if (!head.subarray(0, 12).toString('latin1').includes('101')) {
      client.destroy();
      upstream.destroy();
      return;
    }
    const rest = head.subarray(end + 4);
    if (rest.length) client.write(rest);
    upstream.pipe(client);
    client.pipe(upstream);
    client.resume();
    upstream.resume();
  };
  upstream.on('data', onData);
  const kill = () => {
    client.destroy();
    upstream.destroy();
  };
  upstream.on('error', kill);
  client.on('error', kill);
  upstream.on('close', kill);
  client.on('close', kill);
}

export async function startGrpcForwarder(dockerSocket: string, on: GrpcListenOn): Promise<GrpcForwarder> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, refused: 0 };
  const handle = (socket: net.Socket) => {
    state.connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    upgradeToGrpc(dockerSocket, socket);
  };
  const server =
    on.kind === 'tls'
      ? tls.createServer({ ca: on.ca, cert: on.cert, key: on.key, requestCert: true, rejectUnauthorized: true, ALPNProtocols: ['h2'] }, handle)
      : net.createServer(handle);
  if (server instanceof tls.Server) server.on('tlsClientError', () => state.refused++);
  return listenForwarder(server, sockets, state, on.kind === 'unix' ? on.path : undefined);
}

/** Listen with TLS as the server of a test PKI (`makeTestPki`). */
export async function grpcTlsListen(pki: { caFile: string; serverCertFile: string; serverKeyFile: string }): Promise<GrpcListenOn> {
  return { kind: 'tls', ca: await readFile(pki.caFile), cert: await readFile(pki.serverCertFile), key: await readFile(pki.serverKeyFile) };
}
