/**
 * A loopback stand-in for a standalone buildkitd (tests and benchmarks only):
 * listens on a unix socket, 127.0.0.1 TCP, or TLS with client-certificate
 * verification, and pipes each connection into dockerd's `POST /grpc` upgrade,
 * so the client speaks to it exactly as to buildkitd.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

export interface Forwarder {
  address: string;
  /** Connections accepted so far (proves traffic went through it). */
  connections: number;
  /** TLS handshakes refused (no or wrong client certificate). */
  refused: number;
  close(): Promise<void>;
}

export type ListenOn = { kind: 'unix'; path: string } | { kind: 'tcp' } | { kind: 'tls'; ca: Buffer; cert: Buffer; key: Buffer };

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

export async function startForwarder(dockerSocket: string, on: ListenOn): Promise<Forwarder> {
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
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (on.kind === 'unix') server.listen(on.path, resolve);
    else server.listen(0, '127.0.0.1', resolve);
  });
  const addr = server.address();
  const address = on.kind === 'unix' ? `unix://${on.path}` : `tcp://127.0.0.1:${(addr as net.AddressInfo).port}`;
  return {
    address,
    get connections() {
      return state.connections;
    },
    get refused() {
      return state.refused;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

const run = promisify(execFile);

export interface TestPki {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** A client certificate signed by another CA (must be refused). */
  strangerCertFile: string;
  strangerKeyFile: string;
}

/** A throwaway CA, a server certificate for 127.0.0.1 and client certificates, made with openssl. */
export async function makePki(dir: string): Promise<TestPki> {
  const p = (name: string) => join(dir, name);
  const ossl = (...args: string[]) => run('openssl', args);
  await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.pem'), '-days', '2', '-subj', '/CN=test-ca');
  await ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('other-ca.key'), '-out', p('other-ca.pem'), '-days', '2', '-subj', '/CN=other-ca');
  await writeFile(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await writeFile(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  const issue = async (name: string, ca: string, ext: string) => {
    await ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`);
    await ossl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${ca}.pem`), '-CAkey', p(`${ca}.key`), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2', '-extfile', p(ext));
  };
  await issue('server', 'ca', 'server.ext');
  await issue('client', 'ca', 'client.ext');
  await issue('stranger', 'other-ca', 'client.ext');
  return {
    caFile: p('ca.pem'),
    serverCertFile: p('server.pem'),
    serverKeyFile: p('server.key'),
    clientCertFile: p('client.pem'),
    clientKeyFile: p('client.key'),
    strangerCertFile: p('stranger.pem'),
    strangerKeyFile: p('stranger.key'),
  };
}

export async function tlsListen(pki: TestPki): Promise<ListenOn> {
  return { kind: 'tls', ca: await readFile(pki.caFile), cert: await readFile(pki.serverCertFile), key: await readFile(pki.serverKeyFile) };
}
