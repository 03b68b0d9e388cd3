/**
 * A private dockerd (Debian docker.io 20.10, or a current one from an engine
 * root, see engines.ts): its own data-root, exec-root, pidfile, socket and
 * (empty) config file, no bridge, no iptables. Containers on it use
 * `--network none` or `--network host`.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { unmountAll } from './mounts.ts';
import { logTail, processesUsing, killPid, startDaemon, stopDaemon, waitUntil, type Daemon } from './proc.ts';

export const DOCKERD_BINARY = '/usr/sbin/dockerd';
/** The client from Debian's docker.io, matching the daemon (a newer one may come first in PATH). */
export const DOCKER_CLI = '/usr/bin/docker';

export interface RunningDockerd {
  socketPath: string;
  /** `unix://…` */
  host: string;
  storageDriver: string;
  dataRoot: string;
  execRoot: string;
  daemon: Daemon;
  /** `Server` of `_ping` without the `Docker/` prefix (`20.10.24+dfsg1`, `28.5.2+dfsg4`). */
  version: string;
  /** `Api-Version` of `_ping` (`1.41`, `1.51`). */
  apiVersion: string;
  /** `Builder-Version` of `_ping`: `2` where BuildKit is the daemon's default builder (Engine 23+), else `1`. */
  builderVersion: string;
  /** Kills running containers, stops dockerd and whatever it left running or mounted under its directory. */
  stop(): Promise<void>;
}

/** One Engine API call over the unix socket; resolves with the status, headers and body. */
function engine(socketPath: string, method: string, path: string): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method, timeout: 5_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timeout`)));
    req.on('error', reject);
    req.end();
  });
}

async function ping(socketPath: string): Promise<boolean> {
  return (await engine(socketPath, 'GET', '/_ping').catch(() => ({ status: 0 }))).status === 200;
}

/** Kills every running container, so that stopping dockerd does not wait out their stop timeouts. */
async function killContainers(socketPath: string): Promise<void> {
  const listed = await engine(socketPath, 'GET', '/containers/json').catch(() => undefined);
  if (listed?.status !== 200) return;
  const containers = JSON.parse(listed.body) as { Id: string }[];
  await Promise.all(
    containers.map((c) => engine(socketPath, 'POST', `/containers/${c.Id}/kill`).catch(() => undefined)),
  );
}

export interface DockerdEngine {
  /** Runs its arguments with the engine root's programs (engines.ts); absent: the machine's own dockerd. */
  enter?: string;
  /** A name for messages and the log file (`debian12`, `current`). */
  label?: string;
  /**
   * The containerd image store (Engine 24+; the default for new installs from
   * Engine 29): images in containerd's `overlayfs` snapshotter, OCI image export.
   */
  containerdStore?: boolean;
}

async function startWith(dir: string, storageDriver: string, engineOf: DockerdEngine): Promise<RunningDockerd> {
  const dataRoot = join(dir, 'data');
  const execRoot = join(dir, 'exec');
  const socketPath = join(dir, 'docker.sock');
  const configFile = join(dir, 'daemon.json');
  await mkdir(dataRoot, { recursive: true });
  await mkdir(execRoot, { recursive: true });
  await writeFile(configFile, engineOf.containerdStore ? `${JSON.stringify({ features: { 'containerd-snapshotter': true } })}\n` : '{}\n');
  const dockerdArgs = [
      '--config-file', configFile,
      '--data-root', dataRoot,
      '--exec-root', execRoot,
      '--pidfile', join(dir, 'docker.pid'),
      '-H', `unix://${socketPath}`,
      '--storage-driver', storageDriver,
      '--iptables=false',
      '--ip-forward=false',
      '--ip-masq=false',
      '--bridge=none',
      '--shutdown-timeout', '3',
      // a current dockerd would set up IPv6 NAT rules otherwise; 20.10 has the flag too (experimental)
      ...(engineOf.enter ? ['--ip6tables=false', '--userland-proxy=false'] : []),
  ];
  const daemon = startDaemon(
    `dockerd${engineOf.label ? ` (${engineOf.label})` : ''}`,
    engineOf.enter ?? DOCKERD_BINARY,
    engineOf.enter ? [DOCKERD_BINARY, ...dockerdArgs] : dockerdArgs,
    {
      logFile: join(dir, `dockerd-${storageDriver}.log`),
      // Keep the daemon from inheriting a DOCKER_HOST or proxy settings of the caller.
      env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir },
    },
  );
  try {
    await waitUntil(`dockerd (${storageDriver}) on ${socketPath} (pid ${daemon.pid})`, () => ping(socketPath), {
      alive: daemon.alive,
      timeoutMs: 30_000,
      onFail: () => logTail(daemon),
    });
  } catch (error) {
    await stopDockerdIn(dir, daemon);
    throw error;
  }
  const stop = async (): Promise<void> => {
    if (daemon.alive()) await killContainers(socketPath);
    await stopDockerdIn(dir, daemon);
  };
  let pinged;
  try {
    pinged = await engine(socketPath, 'GET', '/_ping');
  } catch (error) {
    await stop();
    throw error;
  }
  const header = (name: string): string => String(pinged.headers[name] ?? '');
  return {
    socketPath,
    host: `unix://${socketPath}`,
    storageDriver,
    dataRoot,
    execRoot,
    daemon,
    version: header('server').replace(/^Docker\//, '').replace(/ \(.*$/, ''),
    apiVersion: header('api-version'),
    builderVersion: header('builder-version') || '1',
    stop,
  };
}

/**
 * Starts dockerd under `dir` with overlay2, falling back to vfs when overlay2 is
 * not available there (for instance when `dir` itself is on overlayfs).
 */
export async function startDockerd(dir: string, engineOf: DockerdEngine = {}): Promise<RunningDockerd> {
  try {
    return await startWith(dir, engineOf.containerdStore ? 'overlayfs' : 'overlay2', engineOf);
  } catch (overlayError) {
    await rm(join(dir, 'data'), { recursive: true, force: true });
    await rm(join(dir, 'exec'), { recursive: true, force: true });
    try {
      return await startWith(dir, 'vfs', engineOf);
    } catch (vfsError) {
      const reasons = [overlayError, vfsError].map((e) => (e instanceof Error ? e.message : String(e)));
      throw new Error(`starting dockerd in ${dir}: with overlay2: ${reasons[0]}; with vfs: ${reasons[1]}`, {
        cause: new AggregateError([overlayError, vfsError]),
      });
    }
  }
}

/** Stops dockerd, then anything else still running from `dir` (containerd, shims), then unmounts under `dir`. */
async function stopDockerdIn(dir: string, daemon: Daemon): Promise<void> {
  await stopDaemon(daemon, 15_000);
  for (const pid of processesUsing(dir)) await killPid(pid);
  await unmountAll(dir);
}
