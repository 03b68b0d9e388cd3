/**
 * Loopback OCI registries: Debian's `docker-registry` (CNCF distribution 2.8)
 * with filesystem storage, plain HTTP or TLS + htpasswd basic auth.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import {
  chainError,
  freePort,
  listeningPorts,
  logTail,
  run,
  startDaemon,
  stopDaemon,
  waitUntil,
  type Daemon,
} from './proc.ts';

export const REGISTRY_BINARY = 'docker-registry';

export interface RegistryTls {
  certFile: string;
  keyFile: string;
  /** CA that signed `certFile`, for the readiness probe. */
  caFile: string;
}

export interface RegistryOptions {
  /** Directory for the config, the storage and the log; created if missing. */
  dir: string;
  tls?: RegistryTls;
  /** htpasswd file (bcrypt) enabling basic auth. */
  htpasswdFile?: string;
  /** Listen on this port instead of a free one picked here (no retry when it is taken). */
  port?: number;
}

export interface RunningRegistry {
  host: string;
  url: string;
  port: number;
  daemon: Daemon;
}

function registryConfig(options: RegistryOptions, port: number): string {
  // JSON is YAML: distribution reads it as its config file.
  const config: Record<string, unknown> = {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: {
      filesystem: { rootdirectory: join(options.dir, 'data') },
      delete: { enabled: true },
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${port}`,
      secret: randomBytes(16).toString('hex'),
      ...(options.tls ? { tls: { certificate: options.tls.certFile, key: options.tls.keyFile } } : {}),
    },
    ...(options.htpasswdFile ? { auth: { htpasswd: { realm: 'cnb-testenv', path: options.htpasswdFile } } } : {}),
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** GET /v2/ and return the status code (any answer from a registry counts as up). */
function probeV2(url: string, caPem: Buffer | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    const target = new URL('/v2/', url);
    const req = caPem
      ? httpsRequest(target, { ca: caPem, timeout: 2_000 })
      : httpRequest(target, { timeout: 2_000 });
    req.on('response', (res) => {
      res.resume();
      const apiVersion = res.headers['docker-distribution-api-version'];
      if (apiVersion !== 'registry/2.0') {
        reject(new Error(`not a registry (status ${res.statusCode})`));
        return;
      }
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/**
 * Starts a registry on a free port of 127.0.0.1. It counts as ready when the
 * process is alive, listens on the port itself and answers `/v2/`.
 */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  await mkdir(join(options.dir, 'data'), { recursive: true });
  const configFile = join(options.dir, 'config.yml');
  const scheme = options.tls ? 'https' : 'http';
  const caPem = options.tls ? await readFile(options.tls.caFile) : undefined;
  let lastError: unknown;
  const attempts = options.port === undefined ? 5 : 1;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = options.port ?? (await freePort());
    await writeFile(configFile, registryConfig(options, port));
    const daemon = startDaemon(REGISTRY_BINARY, REGISTRY_BINARY, ['serve', configFile], {
      logFile: join(options.dir, 'registry.log'),
      cwd: options.dir,
    });
    const url = `${scheme}://127.0.0.1:${port}`;
    try {
      await waitUntil(
        `the registry at ${url} (pid ${daemon.pid})`,
        async () => listeningPorts(daemon.pid).includes(port) && (await probeV2(url, caPem)) > 0,
        { alive: daemon.alive, timeoutMs: 20_000, onFail: () => logTail(daemon) },
      );
      return { host: `127.0.0.1:${port}`, url, port, daemon };
    } catch (error) {
      lastError = error;
      await stopDaemon(daemon, 2_000);
      // Another process took the port between picking and binding: try another one.
      if (!(await logTail(daemon)).includes('address already in use')) break;
    }
  }
  throw chainError(`starting ${REGISTRY_BINARY} in ${options.dir}`, lastError);
}

export interface SecureMaterial {
  tls: RegistryTls;
  htpasswdFile: string;
  username: string;
  password: string;
}

/**
 * A self-signed CA, a server certificate for 127.0.0.1 (IP SAN) and localhost
 * signed by it, and an htpasswd file (bcrypt) with one random user.
 */
export async function createSecureMaterial(dir: string): Promise<SecureMaterial> {
  await mkdir(dir, { recursive: true });
  const caKey = join(dir, 'ca.key');
  const caFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'server.key');
  const csr = join(dir, 'server.csr');
  const certFile = join(dir, 'server.crt');
  const ext = join(dir, 'server.ext');
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  await run('openssl', [
    'req', '-x509', ...ec, '-keyout', caKey, '-out', caFile, '-days', '7',
    '-subj', '/CN=cnb-extender testenv CA',
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  await run('openssl', ['req', ...ec, '-keyout', keyFile, '-out', csr, '-subj', '/CN=127.0.0.1']);
  await writeFile(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '',
    ].join('\n'),
  );
  await run('openssl', [
    'x509', '-req', '-in', csr, '-CA', caFile, '-CAkey', caKey, '-CAcreateserial',
    '-out', certFile, '-days', '7', '-extfile', ext,
  ]);
  const username = 'testenv';
  const password = randomBytes(12).toString('hex');
  const htpasswdFile = join(dir, 'htpasswd');
  const { stdout } = await run('htpasswd', ['-Bbn', username, password], {
    display: `htpasswd -Bbn ${username} <password>`,
  });
  await writeFile(htpasswdFile, stdout.trim() + '\n', { mode: 0o600 });
  return { tls: { certFile, keyFile, caFile }, htpasswdFile, username, password };
}
