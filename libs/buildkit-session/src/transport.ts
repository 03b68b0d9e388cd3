/**
 * Where BuildKit is and how to reach it.
 *
 * - `docker://` (DOCKER_HOST, else /var/run/docker.sock), `docker:///path/docker.sock`,
 *   `docker://host:port`: dockerd's embedded BuildKit. Control goes through
 *   `POST /grpc`, the session through `POST /session` (both `Upgrade: h2c`).
 * - `unix:///run/buildkit/buildkitd.sock`, `tcp://host:port`: a standalone buildkitd
 *   speaking h2c; with TLS files, `tcp://` speaks h2 over TLS with a client
 *   certificate. The session is tunnelled through `Control/Session`.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TlsOptions {
  /** PEM file of the CA that signed the daemon's certificate. */
  caFile?: string;
  /** PEM client certificate and key (mutual TLS). */
  certFile?: string;
  keyFile?: string;
  /** Name to verify the daemon's certificate against (default the host). */
  serverName?: string;
  /** Do not verify the daemon's certificate (the Docker CLI's `DOCKER_TLS` without `DOCKER_TLS_VERIFY`). */
  skipVerify?: boolean;
}

export type Endpoint =
  | { kind: 'docker'; socketPath: string; address: string }
  | { kind: 'docker'; host: string; port: number; tls?: TlsOptions; address: string }
  | { kind: 'unix'; socketPath: string; address: string }
  | { kind: 'tcp'; host: string; port: number; tls?: TlsOptions; address: string };

export class EndpointError extends Error {
  override name = 'EndpointError';
}

function hostPort(rest: string, address: string): { host: string; port: number } {
  const url = new URL(`tcp://${rest}`);
  const port = Number(url.port);
  if (!url.hostname || !Number.isInteger(port) || port <= 0) throw new EndpointError(`parsing BuildKit address ${address}: expected host:port`);
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
}

/** TLS options as buildctl's `--tlsdir` lays them out (ca.pem, cert.pem, key.pem). */
export function tlsFromDir(dir: string): TlsOptions {
  return { caFile: join(dir, 'ca.pem'), certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') };
}

/**
 * Parses a BuildKit address as `BUILDKIT_HOST` / buildctl `--addr` take it,
 * plus the `docker://` forms. The query of a `tcp://` address may name TLS files
 * (`?ca=…&cert=…&key=…&servername=…`, or `?tlsdir=…`).
 */
export function parseAddress(address: string, env: NodeJS.ProcessEnv = process.env, tlsOptions?: TlsOptions): Endpoint {
  const scheme = /^([a-z0-9+-]+):\/\//.exec(address)?.[1];
  if (scheme === undefined) {
    if (address.startsWith('/')) return { kind: 'unix', socketPath: address, address };
    throw new EndpointError(`parsing BuildKit address ${address}: expected docker://, unix:// or tcp://`);
  }
  const rest = address.slice(scheme.length + 3);
  if (scheme === 'docker') {
    if (rest === '') {
      const dockerHost = env['DOCKER_HOST'] ?? 'unix:///var/run/docker.sock';
      if (dockerHost.startsWith('unix://')) return { kind: 'docker', socketPath: dockerHost.slice(7), address };
      if (dockerHost.startsWith('tcp://')) {
        const { host, port } = hostPort(dockerHost.slice(6), address);
        const certPath = env['DOCKER_CERT_PATH'];
        const useTls = env['DOCKER_TLS_VERIFY'] !== undefined && env['DOCKER_TLS_VERIFY'] !== '' && certPath !== undefined;
        return useTls ? { kind: 'docker', host, port, tls: tlsFromDir(certPath), address } : { kind: 'docker', host, port, address };
      }
      throw new EndpointError(`parsing DOCKER_HOST ${dockerHost}: expected unix:// or tcp://`);
    }
    if (rest.startsWith('/')) return { kind: 'docker', socketPath: rest, address };
    const { host, port } = hostPort(rest, address);
    return tlsOptions ? { kind: 'docker', host, port, tls: tlsOptions, address } : { kind: 'docker', host, port, address };
  }
  if (scheme === 'unix') {
    if (!rest.startsWith('/')) throw new EndpointError(`parsing BuildKit address ${address}: a unix socket path must be absolute`);
    return { kind: 'unix', socketPath: rest, address };
  }
  if (scheme === 'tcp') {
    const [where = '', query = ''] = rest.split('?', 2);
    const { host, port } = hostPort(where, address);
    const params = new URLSearchParams(query);
    let fromQuery: TlsOptions | undefined;
    const dir = params.get('tlsdir');
    if (dir) fromQuery = tlsFromDir(dir);
    if (params.has('ca') || params.has('cert') || params.has('key')) {
      fromQuery = {
        ...(params.get('ca') ? { caFile: params.get('ca')! } : {}),
        ...(params.get('cert') ? { certFile: params.get('cert')! } : {}),
        ...(params.get('key') ? { keyFile: params.get('key')! } : {}),
      };
    }
    const servername = params.get('servername');
    const chosen = tlsOptions ?? fromQuery;
    const withName = chosen && servername ? { ...chosen, serverName: servername } : chosen;
    return withName ? { kind: 'tcp', host, port, tls: withName, address } : { kind: 'tcp', host, port, address };
  }
  throw new EndpointError(`parsing BuildKit address ${address}: unsupported scheme ${scheme}:// (expected docker://, unix:// or tcp://)`);
}

/** The address to use: the explicit one, else `BUILDKIT_HOST`, else `docker://`. */
export function defaultAddress(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env['BUILDKIT_HOST'];
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'docker://';
}

function secureContextOptions(options: TlsOptions): tls.ConnectionOptions {
  return {
    ...(options.caFile ? { ca: readFileSync(options.caFile) } : {}),
    ...(options.certFile ? { cert: readFileSync(options.certFile) } : {}),
    ...(options.keyFile ? { key: readFileSync(options.keyFile) } : {}),
    ...(options.serverName ? { servername: options.serverName } : {}),
    ...(options.skipVerify ? { rejectUnauthorized: false } : {}),
  };
}

/** Opens the raw byte stream to the endpoint (not yet HTTP). */
export function dialRaw(endpoint: Endpoint, alpn: string[]): net.Socket {
  if ('socketPath' in endpoint) return net.connect({ path: endpoint.socketPath });
  if (endpoint.tls) {
    return tls.connect({ host: endpoint.host, port: endpoint.port, ALPNProtocols: alpn, ...secureContextOptions(endpoint.tls) });
  }
  return net.connect({ host: endpoint.host, port: endpoint.port });
}

/** TLS failures in the operator's terms: which side's certificate is wrong, not Node's advice. */
const TLS_REASONS: Record<string, string> = {
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the daemon certificate is not signed by the CA the client trusts (check the ca file)',
  UNABLE_TO_GET_ISSUER_CERT: 'the daemon certificate is not signed by the CA the client trusts (check the ca file)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the daemon certificate is not signed by the CA the client trusts (check the ca file)',
  SELF_SIGNED_CERT_IN_CHAIN: 'the daemon certificate chain ends in a CA the client does not trust (check the ca file)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the daemon certificate is self-signed and not trusted (check the ca file)',
  CERT_HAS_EXPIRED: 'the daemon certificate has expired',
  CERT_NOT_YET_VALID: 'the daemon certificate is not valid yet',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the daemon certificate is for another name (check the address, or servername)',
};

function describeConnectError(err: Error): string {
  const reason = TLS_REASONS[(err as NodeJS.ErrnoException).code ?? ''];
  const detail = err.message.replace(/; if the root CA is installed locally, try running Node\.js with --use-system-ca$/, '');
  return reason ? `${reason}: ${detail}` : detail;
}

function connected(socket: net.Socket, endpoint: Endpoint, signal?: AbortSignal): Promise<void> {
  const event = socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect';
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(new EndpointError(`connecting to BuildKit at ${endpoint.address}: ${describeConnectError(err)}`, { cause: err }));
    };
    const onAbort = () => onError(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    const onReady = () => {
      cleanup();
      resolve();
    };
    const cleanup = () => {
      socket.off('error', onError);
      socket.off(event, onReady);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.once('error', onError);
    socket.once(event, onReady);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * `POST <path>` with `Upgrade: h2c` on dockerd, as the Docker client's
 * DialHijack does; resolves to the raw socket after `101 Switching Protocols`,
 * with any bytes already read put back.
 */
export async function dialHijack(endpoint: Endpoint, path: string, headers: [string, string][], signal?: AbortSignal): Promise<net.Socket> {
  const socket = dialRaw(endpoint, ['http/1.1']);
  await connected(socket, endpoint, signal);
  const hostHeader = 'socketPath' in endpoint ? 'docker' : `${endpoint.host}:${endpoint.port}`;
  const lines = [`POST ${path} HTTP/1.1`, `Host: ${hostHeader}`, 'Connection: Upgrade', 'Upgrade: h2c', 'Content-Length: 0', ...headers.map(([k, v]) => `${k}: ${v}`)];
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const fail = (err: Error) => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buffered.length > 65536) fail(new EndpointError(`upgrading ${path} on ${endpoint.address}: response header too large`));
        return;
      }
      const head = buffered.subarray(0, end).toString('latin1');
      const rest = buffered.subarray(end + 4);
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
      if (status !== '101') {
        fail(new EndpointError(`upgrading ${path} on ${endpoint.address}: the daemon answered ${head.split('\r\n')[0] ?? head}${rest.length ? `: ${rest.toString('utf8').trim()}` : ''}`));
        return;
      }
      socket.pause();
      cleanup();
      if (rest.length > 0) socket.unshift(rest);
      resolve(socket);
    };
    const onError = (err: Error) => fail(new EndpointError(`upgrading ${path} on ${endpoint.address}: ${err.message}`, { cause: err }));
    const onEnd = () => fail(new EndpointError(`upgrading ${path} on ${endpoint.address}: the daemon closed the connection`));
    const onAbort = () => fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
    const cleanup = () => {
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('end', onEnd);
      signal?.removeEventListener('abort', onAbort);
    };
    socket.on('data', onData);
    socket.once('error', onError);
    socket.once('end', onEnd);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** An HTTP/2 client session to the BuildKit control API of the endpoint. */
export async function connectControl(endpoint: Endpoint, signal?: AbortSignal): Promise<http2.ClientHttp2Session> {
  let socket: net.Socket;
  if (endpoint.kind === 'docker') {
    socket = await dialHijack(endpoint, '/grpc', [], signal);
  } else {
    socket = dialRaw(endpoint, ['h2']);
    await connected(socket, endpoint, signal);
  }
  const authority = endpoint.kind !== 'docker' && 'host' in endpoint && endpoint.tls ? `https://${endpoint.host}` : 'http://buildkit';
  const session = http2.connect(authority, { createConnection: () => socket });
  session.on('error', () => {
    // Errors reach the calls on this session; nothing else listens.
  });
  return session;
}

/** A plain HTTP request to dockerd's Engine API. */
export function engineRequest(
  endpoint: Endpoint,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; signal?: AbortSignal; body?: AsyncIterable<Uint8Array> } = {},
): Promise<http.IncomingMessage> {
  if (endpoint.kind !== 'docker') return Promise.reject(new EndpointError(`calling the Engine API: ${endpoint.address} is not a Docker endpoint`));
  return new Promise((resolve, reject) => {
    const base: http.RequestOptions = { method, path, headers: { Host: 'docker', ...options.headers }, ...(options.signal ? { signal: options.signal } : {}) };
    const req =
      'socketPath' in endpoint
        ? http.request({ ...base, socketPath: endpoint.socketPath })
        : http.request({
            ...base,
            createConnection: () => dialRaw(endpoint, ['http/1.1']),
          });
    req.on('response', resolve);
    req.on('error', (err) => reject(new EndpointError(`${method} ${path} on ${endpoint.address}: ${err.message}`, { cause: err })));
    if (!options.body) {
      req.end();
      return;
    }
    const body = options.body;
    void (async () => {
      try {
        for await (const chunk of body) {
          if (!req.write(chunk)) await new Promise<void>((r) => req.once('drain', () => r()));
        }
        req.end();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}

export async function readBody(res: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
