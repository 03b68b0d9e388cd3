/**
 * `DOCKER_HOST` → a dockerode client; is a daemon answering there?
 *
 * TLS follows the Docker CLI's variables: `DOCKER_TLS_VERIFY` (non-empty: TLS,
 * the daemon's certificate verified against `ca.pem`), `DOCKER_TLS` (non-empty:
 * TLS without verifying the daemon), `DOCKER_CERT_PATH` (the directory of
 * `ca.pem`, `cert.pem`, `key.pem`; default `DOCKER_CONFIG`, else `~/.docker`).
 * They apply to `tcp://` hosts (and `https://`), not to sockets, as with the CLI.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';

export const DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock';

export type DockerEnv = Readonly<Record<string, string | undefined>>;

/** TLS to a `tcp://` daemon, as the Docker CLI's variables ask for it. */
export interface DockerTlsSettings {
  /** Verify the daemon's certificate against `ca.pem` and the host name (`DOCKER_TLS_VERIFY`); false: `DOCKER_TLS`. */
  verify: boolean;
  /** Directory of `ca.pem`, `cert.pem` and `key.pem`. */
  certPath: string;
  /** How `certPath` was chosen, for messages: `DOCKER_CERT_PATH`, `DOCKER_CONFIG` or `~/.docker`. */
  certPathFrom?: string;
}

export interface DockerConnection {
  /** The host as given (`unix:///…`, `tcp://host:port`). */
  host: string;
  docker: Docker;
  /** TLS in use: `verify` as set; `clientCert` whether a client certificate is offered. Never key material. */
  tls?: { verify: boolean; certPath: string; certPathFrom: string; clientCert: boolean };
}

export interface ConnectOptions {
  /** Where `DOCKER_HOST` and the TLS variables are read (default `process.env`). */
  env?: DockerEnv;
  /** TLS settings instead of the ones in `env`; `false`: no TLS. */
  tls?: DockerTlsSettings | false;
  timeoutMs?: number;
}

/** Non-empty means set, as the Docker CLI reads these variables (`DOCKER_TLS_VERIFY=0` is set, too). */
function isSet(value: string | undefined): boolean {
  return value !== undefined && value !== '';
}

/** The TLS settings `env` asks for (undefined: none); reads no file. */
export function dockerTlsFromEnv(env: DockerEnv = process.env): DockerTlsSettings | undefined {
  const verify = isSet(env['DOCKER_TLS_VERIFY']);
  if (!verify && !isSet(env['DOCKER_TLS'])) return undefined;
  if (isSet(env['DOCKER_CERT_PATH'])) return { verify, certPath: env['DOCKER_CERT_PATH']!, certPathFrom: 'DOCKER_CERT_PATH' };
  // the CLI's default is its config directory
  if (isSet(env['DOCKER_CONFIG'])) return { verify, certPath: env['DOCKER_CONFIG']!, certPathFrom: 'DOCKER_CONFIG (DOCKER_CERT_PATH is not set)' };
  return { verify, certPath: join(isSet(env['HOME']) ? env['HOME']! : homedir(), '.docker'), certPathFrom: '~/.docker (DOCKER_CERT_PATH is not set)' };
}

function fsReason(err: unknown): string {
  const code = (err as { code?: string }).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES') return 'permission denied';
  if (code === 'EISDIR') return 'is a directory';
  return err instanceof Error ? err.message : String(err);
}

/** `DOCKER_CERT_PATH/ca.pem (/abs/ca.pem)`: the variable first, then the actual path. */
function certLabel(settings: DockerTlsSettings, file: string): string {
  const from = settings.certPathFrom ?? 'DOCKER_CERT_PATH';
  const short = from.startsWith('~/.docker') ? '~/.docker' : from.split(' ')[0]!;
  return `${short}/${file} (${join(settings.certPath, file)})`;
}

function readPem(settings: DockerTlsSettings, file: string, optional: boolean): Buffer | undefined {
  try {
    return readFileSync(join(settings.certPath, file));
  } catch (err) {
    if (optional && (err as { code?: string }).code === 'ENOENT') return undefined;
    throw new Error(`reading ${certLabel(settings, file)}: ${fsReason(err)}`, { cause: err });
  }
}

interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * The files `settings` needs: `ca.pem` when verifying; `cert.pem` and `key.pem`
 * when both are there (as the CLI, none of them means no client certificate).
 */
function readTlsMaterial(settings: DockerTlsSettings): TlsMaterial {
  const material: TlsMaterial = {};
  if (settings.verify) {
    try {
      material.ca = readPem(settings, 'ca.pem', false);
    } catch (err) {
      const from = settings.certPathFrom ?? 'DOCKER_CERT_PATH';
      const hint = from === 'DOCKER_CERT_PATH' ? '' : '; set DOCKER_CERT_PATH to the directory of ca.pem, cert.pem and key.pem';
      throw new Error(`${(err as Error).message} (DOCKER_TLS_VERIFY verifies the daemon against it${hint})`, { cause: err });
    }
  }
  const cert = readPem(settings, 'cert.pem', true);
  const key = readPem(settings, 'key.pem', true);
  if ((cert === undefined) !== (key === undefined)) {
    const missing = cert === undefined ? 'cert.pem' : 'key.pem';
    throw new Error(`reading ${certLabel(settings, missing)}: no such file (a client certificate needs both cert.pem and key.pem)`);
  }
  if (cert && key) Object.assign(material, { cert, key });
  return material;
}

/** How a TLS connection is set up, for messages: `with TLS`, `with TLS (daemon certificate not verified: DOCKER_TLS)`. */
export function describeTls(tls: DockerConnection['tls'] | DockerTlsSettings | undefined): string {
  if (!tls) return '';
  return tls.verify ? ' with TLS' : " with TLS (the daemon's certificate not verified: DOCKER_TLS)";
}

/**
 * A dockerode client for `host` (`unix://` socket, `tcp://`/`http://`, `https://`),
 * with TLS for `tcp://` when `env` (or `options.tls`) asks for it. Reads the TLS
 * files; throws when one it needs cannot be read (naming the file and variable).
 */
export function connect(host?: string, options: ConnectOptions = {}): DockerConnection {
  const env = options.env ?? process.env;
  const address = host ?? (isSet(env['DOCKER_HOST']) ? env['DOCKER_HOST']! : DEFAULT_DOCKER_HOST);
  const extra = options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {};
  // dockerode also reads DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH of this
  // process as defaults: every one of them is given here so that only `env` counts
  const unset = { host: undefined, port: undefined, ca: undefined, cert: undefined, key: undefined };
  if (address.startsWith('unix://') || address.startsWith('/')) {
    const socketPath = address.startsWith('/') ? address : address.slice('unix://'.length);
    return { host: address, docker: new Docker({ ...unset, protocol: 'http', socketPath, ...extra }) };
  }
  const match = /^(tcp|http|https):\/\/(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/?$/.exec(address);
  if (!match) throw new Error(`reading DOCKER_HOST ${JSON.stringify(address)}: expected unix:///path or tcp://host:port`);
  const hostname = match[2]!.replace(/^\[|\]$/g, '');
  const settings = options.tls === false || match[1] === 'http' ? undefined : (options.tls ?? dockerTlsFromEnv(env));
  if (!settings) {
    // https:// without TLS variables: TLS verified against the system's CAs
    const protocol = match[1] === 'https' ? 'https' : 'http';
    const port = match[3] ? Number(match[3]) : protocol === 'https' ? 2376 : 2375;
    return { host: address, docker: new Docker({ ...unset, protocol, host: hostname, port, ...extra }) };
  }
  const material = readTlsMaterial(settings);
  const agent = new https.Agent({ keepAlive: true, ...material, rejectUnauthorized: settings.verify });
  // as the CLI: tcp:// without a port is 2375, with TLS too
  const port = match[3] ? Number(match[3]) : match[1] === 'https' ? 2376 : 2375;
  // the agent carries rejectUnauthorized, which dockerode does not pass on itself
  const dockerOptions: Docker.DockerOptions & { agent: https.Agent } = { ...unset, protocol: 'https', host: hostname, port, ...material, agent, ...extra };
  return {
    host: address,
    docker: new Docker(dockerOptions),
    tls: { verify: settings.verify, certPath: settings.certPath, certPathFrom: settings.certPathFrom ?? 'DOCKER_CERT_PATH', clientCert: material.cert !== undefined },
  };
}

// Node's codes for a daemon certificate the client does not accept
const SERVER_CERT_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The reason in an OpenSSL error (`…:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:…`), or Node's first clause. */
function tlsReason(text: string): string {
  const ssl = /SSL routines:[^:]*:([^:]+):/.exec(text);
  return (ssl ? ssl[1]! : text.split(';')[0]!).trim();
}

/**
 * What went wrong reaching the daemon, for the error message: a failed TLS
 * handshake says so and which file is involved; anything else is the error's own text.
 */
export function describeConnectError(err: unknown, connection: Pick<DockerConnection, 'tls'>): { message: string; tlsHandshake: boolean } {
  const text = err instanceof Error ? err.message : String(err);
  const tls = connection.tls;
  if (!tls) return { message: text, tlsHandshake: false };
  const code = (err as { code?: string }).code ?? '';
  const reason = tlsReason(text);
  const settings: DockerTlsSettings = { verify: tls.verify, certPath: tls.certPath, certPathFrom: tls.certPathFrom };
  const failed = `the TLS handshake failed (${reason})`;
  if (SERVER_CERT_CODES.has(code)) {
    return { message: `${failed}: the daemon's certificate must be signed by ${certLabel(settings, 'ca.pem')} and name the host (DOCKER_TLS_VERIFY)`, tlsHandshake: true };
  }
  const clientCert = certLabel(settings, 'cert.pem');
  if (/certificate required/i.test(reason)) {
    return { message: `${failed}: the daemon requires a client certificate and there is none: no ${clientCert} with key.pem beside it`, tlsHandshake: true };
  }
  if (/wrong version number|packet length too long/i.test(reason)) {
    return { message: `${failed}: the daemon does not speak TLS on that port`, tlsHandshake: true };
  }
  if (/unknown ca|bad certificate|certificate unknown|unsupported certificate/i.test(reason)) {
    return { message: `${failed}: the daemon does not accept the client certificate ${clientCert}`, tlsHandshake: true };
  }
  if (code === 'ECONNRESET' || code.startsWith('ERR_SSL_') || code === 'EPROTO') {
    // TLS 1.3: a daemon that rejects the client certificate often just closes the connection
    const client = tls.clientCert ? `it may not accept the client certificate ${clientCert}` : `no client certificate was offered (no ${clientCert} with key.pem beside it)`;
    return { message: `${failed}: the daemon closed the connection; ${client}`, tlsHandshake: true };
  }
  return { message: text, tlsHandshake: false };
}

export interface ReachableOptions {
  /** Default `DOCKER_HOST` from `env`, else the default socket. */
  host?: string;
  /** Where `DOCKER_HOST` and the TLS variables are read (default `process.env`). */
  env?: DockerEnv;
  /** Default 3 s. */
  timeoutMs?: number;
}

/**
 * True when a Docker daemon answers `/_ping` within the timeout (default 3 s), with
 * the TLS settings of the environment. `isDockerReachable(host, timeoutMs)` reads them
 * from `process.env`; `isDockerReachable({ env })` from the given environment.
 */
export async function isDockerReachable(hostOrOptions?: string | ReachableOptions, timeoutMs = 3000): Promise<boolean> {
  const options: ReachableOptions = typeof hostOrOptions === 'object' ? hostOrOptions : { ...(hostOrOptions !== undefined ? { host: hostOrOptions } : {}), timeoutMs };
  try {
    const { docker } = connect(options.host, { timeoutMs: options.timeoutMs ?? 3000, ...(options.env ? { env: options.env } : {}) });
    await docker.ping();
    return true;
  } catch {
    return false;
  }
}

/** Newest Engine API version this backend speaks (Docker Engine 28.5); newer daemons are asked for this one. */
export const API_VERSION_MAX = '1.51';
/** Oldest Engine API version the calls this backend makes exist in (`/build`, `/images/load`, `/images/{name}/get`). */
export const API_VERSION_MIN = '1.24';
/** BuildKit builds (`/build?version=2` with a `/session`) came with Engine API 1.39 (Docker 18.09), on Linux daemons. */
export const BUILDKIT_API_VERSION_MIN = '1.39';

/** What `GET /_ping` tells of the daemon, and the API version this backend then uses. */
export interface DaemonFacts {
  /** The daemon's newest API version (`Api-Version`). */
  apiVersion: string;
  /** The version every later request is made with: the older of the daemon's and API_VERSION_MAX. */
  negotiated: string;
  /** `Builder-Version`: `2` where BuildKit is the daemon's default builder (Engine 23+), `1` before. */
  builderVersion: string;
  /** `OSType` (`linux`, `windows`). */
  osType: string;
  /** Whether the daemon can build with BuildKit (API 1.39+, Linux). */
  buildkit: boolean;
}

/** Compares dotted API versions numerically (`1.9` < `1.10`). */
export function compareApiVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

interface ModemFields {
  socketPath?: string;
  host?: string;
  port?: number;
  protocol?: string;
  agent?: https.Agent;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  timeout?: number;
  version?: string;
}

/** `GET /_ping` without an API version prefix (as the Docker CLI negotiates), resolving with its headers. */
function pingHeaders(connection: DockerConnection, signal?: AbortSignal): Promise<Record<string, string | string[] | undefined>> {
  const modem = connection.docker.modem as unknown as ModemFields;
  const options: https.RequestOptions = {
    path: '/_ping',
    method: 'GET',
    timeout: modem.timeout ?? 30_000,
    ...(signal ? { signal } : {}),
    ...(modem.socketPath
      ? { socketPath: modem.socketPath }
      : { host: modem.host, port: modem.port, ...(modem.agent ? { agent: modem.agent } : {}), ...(modem.ca ? { ca: modem.ca } : {}), ...(modem.cert ? { cert: modem.cert, key: modem.key } : {}) }),
  };
  const request = modem.protocol === 'https' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) resolve(res.headers);
        else reject(new Error(`GET /_ping answered HTTP ${res.statusCode}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('GET /_ping: no answer in time')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Negotiates the Engine API version as the Docker CLI does: asks `_ping` for the
 * daemon's, uses the older of it and API_VERSION_MAX for every later request of
 * `connection`, and refuses a daemon older than API_VERSION_MIN. A daemon that
 * names no version (very old ones) is refused too.
 */
export async function negotiateApiVersion(connection: DockerConnection, signal?: AbortSignal): Promise<DaemonFacts> {
  const headers = await pingHeaders(connection, signal);
  const header = (name: string): string => String(headers[name] ?? '');
  const apiVersion = header('api-version');
  if (!/^\d+\.\d+$/.test(apiVersion)) throw new Error(`the daemon's _ping names no Engine API version (Api-Version: ${JSON.stringify(apiVersion)}); Docker Engine 1.12 or later is needed`);
  if (compareApiVersions(apiVersion, API_VERSION_MIN) < 0) {
    throw new Error(`the daemon speaks Engine API ${apiVersion}, older than the ${API_VERSION_MIN} this backend needs`);
  }
  const negotiated = compareApiVersions(apiVersion, API_VERSION_MAX) < 0 ? apiVersion : API_VERSION_MAX;
  (connection.docker.modem as unknown as ModemFields).version = `v${negotiated}`;
  const osType = header('ostype').toLowerCase() || 'linux';
  return {
    apiVersion,
    negotiated,
    builderVersion: header('builder-version') || '1',
    osType,
    buildkit: osType === 'linux' && compareApiVersions(apiVersion, BUILDKIT_API_VERSION_MIN) >= 0,
  };
}
