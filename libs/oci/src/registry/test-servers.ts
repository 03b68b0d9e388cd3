/**
 * Loopback HTTP servers for the registry client's tests: a forwarding proxy in
 * front of a real registry (with hooks to inject faults), and a token service
 * that puts the distribution Bearer-token flow in front of one. Test support
 * only; not exported from the package.
 */
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface LoopbackServer {
  /** `127.0.0.1:<port>` */
  host: string;
  url: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<LoopbackServer> {
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Faults injected into a forwarded exchange. The connection is cut once the
 * given number of body bytes went through; `'half'` is half of the body's
 * Content-Length.
 */
export interface ForwardFaults {
  /**
   * `reset` (default) sends a TCP RST: bytes still queued are lost, the peer
   * sees ECONNRESET. `close` ends the connection cleanly after the bytes
   * written: the peer gets exactly those, then a premature end of the body.
   */
  cutWith?: 'reset' | 'close';
  /** Cut after this many bytes of the response body were sent to the client. */
  cutResponseAfter?: number | 'half';
  /** Cut after this many bytes of the request body arrived from the client. */
  cutRequestAfter?: number | 'half';
  /** Request headers not passed upstream (`range`: a registry that ignores Range). */
  dropHeaders?: string[];
}

function limitOf(limit: number | 'half' | undefined, contentLength: string | undefined): number | undefined {
  if (limit !== 'half') return limit;
  const length = Number(contentLength);
  return Number.isFinite(length) && length > 1 ? Math.floor(length / 2) : undefined;
}

/**
 * Copy `from` into `to`, cutting `socket` once `limit` bytes went through
 * (exactly `limit` bytes are written first).
 */
function pipeWithCut(from: IncomingMessage, to: NodeJS.WritableStream, limit: number | undefined, socket: Socket, cut: 'reset' | 'close', onCut: () => void): void {
  if (limit === undefined) {
    from.pipe(to);
    return;
  }
  let passed = 0;
  from.on('data', (chunk: Buffer) => {
    if (passed >= limit) return;
    const room = limit - passed;
    passed += chunk.byteLength;
    if (chunk.byteLength < room) {
      if (!to.write(chunk)) {
        from.pause();
        to.once('drain', () => from.resume());
      }
      return;
    }
    from.pause();
    to.write(chunk.subarray(0, room), () => {
      onCut();
      if (cut === 'reset') socket.resetAndDestroy();
      else socket.destroySoon();
    });
  });
  from.on('end', () => {
    if (passed < limit) to.end();
  });
}

/** Forward a request to a plain-HTTP upstream (`127.0.0.1:port`), keeping the Host header so Location URLs point back at us. */
export function forward(
  upstream: string,
  req: IncomingMessage,
  res: ServerResponse,
  headers: Record<string, string | string[] | undefined> = req.headers,
  faults: ForwardFaults = {},
): void {
  const [hostname, port] = upstream.split(':');
  const sent = { ...headers };
  for (const name of faults.dropHeaders ?? []) delete sent[name.toLowerCase()];
  const out = httpRequest({ hostname, port: Number(port), method: req.method, path: req.url, headers: sent }, (upstreamRes) => {
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
    const limit = limitOf(faults.cutResponseAfter, upstreamRes.headers['content-length']);
    pipeWithCut(upstreamRes, res, limit, req.socket, faults.cutWith ?? 'reset', () => upstreamRes.destroy());
  });
  out.on('error', () => {
    if (!res.headersSent) res.writeHead(502).end();
    else res.destroy();
  });
  const limit = limitOf(faults.cutRequestAfter, req.headers['content-length']);
  pipeWithCut(req, out, limit, req.socket, faults.cutWith ?? 'reset', () => out.destroy());
}

export interface ProxyRequestInfo {
  method: string;
  url: string;
  /** 1-based count of requests this proxy has seen. */
  count: number;
  headers: IncomingMessage['headers'];
}

/**
 * What to do with one request: `pass` forwards it, `{ forward }` forwards it
 * with faults (a reset in the middle of a body, a dropped header), a status
 * answers with that status (and optional headers), `reset` destroys the
 * connection, `hang` never answers.
 */
export type ProxyAction =
  | 'pass'
  | 'reset'
  | 'hang'
  | { forward: ForwardFaults }
  | { status: number; headers?: Record<string, string>; body?: string };

/** A proxy in front of a plain-HTTP registry whose `decide` hook can inject faults per request. */
export async function startFaultProxy(
  upstream: string,
  decide: (info: ProxyRequestInfo) => ProxyAction,
): Promise<LoopbackServer & { requests: ProxyRequestInfo[] }> {
  const requests: ProxyRequestInfo[] = [];
  const server = createServer((req, res) => {
    const info: ProxyRequestInfo = { method: req.method ?? 'GET', url: req.url ?? '/', count: requests.length + 1, headers: req.headers };
    requests.push(info);
    const action = decide(info);
    if (action === 'pass') return forward(upstream, req, res);
    if (typeof action === 'object' && 'forward' in action) return forward(upstream, req, res, req.headers, action.forward);
    req.resume();
    if (action === 'reset') return req.socket.destroy();
    if (action === 'hang') return;
    res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
    res.end(action.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }));
  });
  const base = await listen(server);
  return Object.assign(base, { requests });
}

export interface TokenServerOptions {
  /** The registry to put behind the token flow (plain HTTP, `127.0.0.1:port`). */
  upstream: string;
  username: string;
  password: string;
  service?: string;
  /** Accept OAuth2 `grant_type=refresh_token` POSTs with this refresh token (identity tokens). */
  refreshToken?: string;
}

export interface TokenServer extends LoopbackServer {
  /** Scope strings asked for at the token endpoint, in order. */
  tokenRequests: { scopes: string[]; account: string | undefined; authorized: boolean }[];
  /** Authorization headers the proxy refused. */
  rejected: number;
}

/**
 * A registry front that speaks the distribution token flow: any request without a
 * valid Bearer token gets `401` with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`;
 * `GET /token` checks Basic credentials and issues a token for the scopes asked;
 * requests with a token that covers the repository and action are forwarded upstream.
 */
export async function startTokenServer(options: TokenServerOptions): Promise<TokenServer> {
  const service = options.service ?? 'cnb-test-registry';
  const tokens = new Map<string, Set<string>>();
  const tokenRequests: TokenServer['tokenRequests'] = [];
  let realm = '';
  const state = { rejected: 0 };

  const needed = (req: IncomingMessage): string[] => {
    const url = new URL(req.url ?? '/', 'http://x');
    const match = /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(url.pathname);
    if (!match) return [];
    const repository = match[1]!;
    const push = !['GET', 'HEAD'].includes(req.method ?? 'GET');
    const out = [`repository:${repository}:${push ? 'push' : 'pull'}`];
    const from = url.searchParams.get('from');
    if (from) out.push(`repository:${from}:pull`);
    return out;
  };
  const covers = (granted: Set<string>, want: string) => {
    const i = want.lastIndexOf(':');
    return granted.has(want) || granted.has(`${want.slice(0, i)}:*`);
  };

  const issue = (res: ServerResponse, scopes: string[], authorized: boolean) => {
    if (!authorized) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    const token = randomBytes(24).toString('base64url');
    const granted = new Set<string>();
    for (const scope of scopes) {
      const i = scope.lastIndexOf(':');
      for (const action of scope.slice(i + 1).split(',')) granted.add(`${scope.slice(0, i)}:${action}`);
    }
    tokens.set(token, granted);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, access_token: token, expires_in: 300, issued_at: new Date().toISOString() }));
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => (body += chunk));
      req.on('end', () => {
        const form = new URLSearchParams(body);
        const scopes = (form.get('scope') ?? '').split(' ').filter(Boolean);
        const authorized =
          options.refreshToken !== undefined && form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === options.refreshToken;
        tokenRequests.push({ scopes, account: undefined, authorized });
        issue(res, scopes, authorized);
      });
      return;
    }
    if (url.pathname === '/token') {
      req.resume();
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' ')).filter(Boolean);
      const header = req.headers.authorization ?? '';
      const expected = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString('base64')}`;
      const authorized = header === expected;
      tokenRequests.push({ scopes, account: url.searchParams.get('account') ?? undefined, authorized });
      issue(res, scopes, authorized);
      return;
    }
    const want = needed(req);
    const auth = req.headers.authorization ?? '';
    const granted = auth.startsWith('Bearer ') ? tokens.get(auth.slice(7)) : undefined;
    if (!granted || !want.every((w) => covers(granted, w))) {
      if (auth) state.rejected++;
      req.resume();
      const scope = want.length ? `,scope="${want.map((w) => w.replace(/:push$/, ':pull,push')).join(' ')}"` : '';
      res.writeHead(401, {
        'content-type': 'application/json',
        'www-authenticate': `Bearer realm="${realm}",service="${service}"${scope}`,
        'docker-distribution-api-version': 'registry/2.0',
      });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    const headers = { ...req.headers };
    delete headers.authorization;
    forward(options.upstream, req, res, headers);
  });
  const base = await listen(server);
  realm = `${base.url}/token`;
  const out = Object.assign(base, { tokenRequests, rejected: 0 });
  Object.defineProperty(out, 'rejected', { get: () => state.rejected });
  return out;
}
