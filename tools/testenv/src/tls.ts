/**
 * Loopback TLS for tests: a throwaway PKI made with openssl, and a forwarder on
 * 127.0.0.1 (plain TCP or TLS, optionally requiring a client certificate) that
 * pipes each connection into a unix socket, so a daemon that listens only on a
 * socket (the environment's dockerd) can be reached as `tcp://` or over TLS.
 */
import { execFile } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TestPki {
  /** The test CA (PEM). */
  caFile: string;
  /** Server certificate for `IP:127.0.0.1` and `DNS:localhost`, signed by the test CA. */
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate signed by the test CA. */
  clientCertFile: string;
  clientKeyFile: string;
  /** Another CA: certificates it signed must be refused where the test CA is expected. */
  otherCaFile: string;
  /** Server certificate for 127.0.0.1 signed by the other CA. */
  otherServerCertFile: string;
  otherServerKeyFile: string;
  /** Client certificate signed by the other CA. */
  strangerCertFile: string;
  strangerKeyFile: string;
}

/** Make a test CA, another CA, and server and client certificates from both (P-256 keys, valid 2 days) in `dir`. */
export async function makeTestPki(dir: string): Promise<TestPki> {
  const p = (name: string) => join(dir, name);
  const ossl = (...args: string[]) => run('openssl', args);
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    await ossl('req', '-x509', ...newKey, '-keyout', p(`${ca}.key`), '-out', p(`${ca}.pem`), '-days', '2', '-subj', `/CN=cnb-extender test ${ca}`);
  }
  await writeFile(p('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await writeFile(p('client.ext'), 'extendedKeyUsage=clientAuth\n');
  const issue = async (name: string, ca: string, ext: string) => {
    await ossl('req', ...newKey, '-keyout', p(`${name}.key`), '-out', p(`${name}.csr`), '-subj', `/CN=${name}`);
    await ossl('x509', '-req', '-in', p(`${name}.csr`), '-CA', p(`${ca}.pem`), '-CAkey', p(`${ca}.key`), '-CAcreateserial', '-out', p(`${name}.pem`), '-days', '2', '-extfile', p(ext));
  };
  await issue('server', 'ca', 'server.ext');
  await issue('client', 'ca', 'client.ext');
  await issue('other-server', 'other-ca', 'server.ext');
  await issue('stranger', 'other-ca', 'client.ext');
  return {
    caFile: p('ca.pem'),
    serverCertFile: p('server.pem'),
    serverKeyFile: p('server.key'),
    clientCertFile: p('client.pem'),
    clientKeyFile: p('client.key'),
    otherCaFile: p('other-ca.pem'),
    otherServerCertFile: p('other-server.pem'),
    otherServerKeyFile: p('other-server.key'),
    strangerCertFile: p('stranger.pem'),
    strangerKeyFile: p('stranger.key'),
  };
}

export interface ForwarderTls {
  /** PEM files of the server certificate and key. */
  certFile: string;
  keyFile: string;
  /** Require a client certificate signed by this CA (mutual TLS); without it any client is served. */
  clientCaFile?: string;
}

export interface SocketForwarder {
  /** `tcp://127.0.0.1:<port>` */
  address: string;
  port: number;
  /** Connections accepted (for TLS: handshakes that succeeded). */
  readonly connections: number;
  /** TLS handshakes that failed (no, or an untrusted, client certificate; a client that refused the server). */
  readonly refused: number;
  /** Bytes received from clients and passed on to the socket. */
  readonly bytesIn: number;
  close(): Promise<void>;
}

/** Listen on a free port of 127.0.0.1 (TLS when `options.tls` is given) and pipe every connection into `socketPath`. */
export async function startSocketForwarder(socketPath: string, options: { tls?: ForwarderTls } = {}): Promise<SocketForwarder> {
  const sockets = new Set<net.Socket>();
  const state = { connections: 0, refused: 0, bytesIn: 0 };
  const handle = (client: net.Socket) => {
    state.connections++;
    const upstream = net.connect({ path: socketPath });
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (chunk: Buffer) => {
      state.bytesIn += chunk.length;
    });
    client.pipe(upstream);
    upstream.pipe(client);
    const kill = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', kill);
    upstream.on('error', kill);
    client.on('close', kill);
    upstream.on('close', kill);
  };
  let server: net.Server;
  if (options.tls) {
    const { certFile, keyFile, clientCaFile } = options.tls;
    const mutual = clientCaFile !== undefined;
    server = tls.createServer(
      {
        cert: await readFile(certFile),
        key: await readFile(keyFile),
        ...(mutual ? { ca: await readFile(clientCaFile), requestCert: true, rejectUnauthorized: true } : {}),
      },
      handle,
    );
    server.on('tlsClientError', (_err, socket) => {
      state.refused++;
      socket.destroy();
    });
  } else {
    server = net.createServer(handle);
  }
  return listenForwarder(server, sockets, state);
}

/**
 * Serve a forwarder: listen on `unixPath`, else on a free port of 127.0.0.1. Each of the
 * `counters` is a live read-only property of the result; `close` destroys the `sockets` still
 * open and closes the server.
 */
export async function listenForwarder<C extends Record<string, number>>(
  server: net.Server,
  sockets: ReadonlySet<net.Socket>,
  counters: C,
  unixPath?: string,
): Promise<{ address: string; port: number; close(): Promise<void> } & Readonly<C>> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (unixPath !== undefined) server.listen(unixPath, () => resolve());
    else server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = unixPath === undefined ? (server.address() as net.AddressInfo).port : 0;
  const served = {
    address: unixPath === undefined ? `tcp://127.0.0.1:${port}` : `unix://${unixPath}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  for (const key of Object.keys(counters)) Object.defineProperty(served, key, { get: () => counters[key], enumerable: true });
  return served as typeof served & Readonly<C>;
}
